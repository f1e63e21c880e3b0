"""The rules: friends, the presence merge, account export and deletion,
retention."""
