"""Language ids as people read them.

Editors speak in ids (VS Code: ``typescriptreact``, Neovim: ``typescriptreact``
too, JetBrains: ``TypeScript JSX``). Friends should read "TypeScript", so the
desktop turns ids into display names before anything is sent, and the window
title fallback, which only sees a file name, guesses the id from the extension.
"""

from __future__ import annotations

import re

_NAMES: dict[str, str] = {
    "bat": "Batch",
    "c": "C",
    "clojure": "Clojure",
    "cmake": "CMake",
    "coffeescript": "CoffeeScript",
    "cpp": "C++",
    "csharp": "C#",
    "css": "CSS",
    "cuda-cpp": "CUDA",
    "dart": "Dart",
    "dockerfile": "Dockerfile",
    "elixir": "Elixir",
    "erlang": "Erlang",
    "fsharp": "F#",
    "go": "Go",
    "graphql": "GraphQL",
    "groovy": "Groovy",
    "haskell": "Haskell",
    "html": "HTML",
    "ini": "INI",
    "java": "Java",
    "javascript": "JavaScript",
    "javascriptreact": "JavaScript",
    "json": "JSON",
    "jsonc": "JSON",
    "julia": "Julia",
    "jupyter": "Jupyter",
    "kotlin": "Kotlin",
    "latex": "LaTeX",
    "less": "Less",
    "lua": "Lua",
    "makefile": "Makefile",
    "markdown": "Markdown",
    "nix": "Nix",
    "objective-c": "Objective-C",
    "objective-cpp": "Objective-C++",
    "ocaml": "OCaml",
    "perl": "Perl",
    "php": "PHP",
    "plaintext": "Plain Text",
    "powershell": "PowerShell",
    "python": "Python",
    "r": "R",
    "razor": "Razor",
    "ruby": "Ruby",
    "rust": "Rust",
    "scala": "Scala",
    "scss": "SCSS",
    "shellscript": "Shell",
    "sql": "SQL",
    "svelte": "Svelte",
    "swift": "Swift",
    "tex": "TeX",
    "toml": "TOML",
    "typescript": "TypeScript",
    "typescriptreact": "TypeScript",
    "vb": "Visual Basic",
    "vue": "Vue",
    "xml": "XML",
    "yaml": "YAML",
    "zig": "Zig",
}

_EXTENSIONS: dict[str, str] = {
    "bat": "bat",
    "c": "c",
    "cc": "cpp",
    "clj": "clojure",
    "cmake": "cmake",
    "cpp": "cpp",
    "cs": "csharp",
    "css": "css",
    "cu": "cuda-cpp",
    "cxx": "cpp",
    "dart": "dart",
    "ex": "elixir",
    "exs": "elixir",
    "erl": "erlang",
    "fs": "fsharp",
    "go": "go",
    "graphql": "graphql",
    "groovy": "groovy",
    "h": "c",
    "hpp": "cpp",
    "hs": "haskell",
    "htm": "html",
    "html": "html",
    "ini": "ini",
    "ipynb": "jupyter",
    "java": "java",
    "jl": "julia",
    "js": "javascript",
    "json": "json",
    "jsx": "javascriptreact",
    "kt": "kotlin",
    "kts": "kotlin",
    "less": "less",
    "lua": "lua",
    "m": "objective-c",
    "md": "markdown",
    "mjs": "javascript",
    "cjs": "javascript",
    "ml": "ocaml",
    "nix": "nix",
    "php": "php",
    "pl": "perl",
    "ps1": "powershell",
    "py": "python",
    "pyi": "python",
    "r": "r",
    "rb": "ruby",
    "rs": "rust",
    "scala": "scala",
    "scss": "scss",
    "sh": "shellscript",
    "bash": "shellscript",
    "zsh": "shellscript",
    "sql": "sql",
    "svelte": "svelte",
    "swift": "swift",
    "tex": "latex",
    "toml": "toml",
    "ts": "typescript",
    "tsx": "typescriptreact",
    "txt": "plaintext",
    "vb": "vb",
    "vue": "vue",
    "xml": "xml",
    "yaml": "yaml",
    "yml": "yaml",
    "zig": "zig",
}

_FILE_NAMES: dict[str, str] = {
    "dockerfile": "dockerfile",
    "makefile": "makefile",
    "cmakelists.txt": "cmake",
}

_ID_SHAPE = re.compile(r"^[a-z0-9][a-z0-9_+#.-]*$")


def display_name(language_id: str) -> str:
    """The name friends read for an editor's language id.

    Unknown ids that look like ids (``gleam``) are capitalised; anything else
    (a JetBrains-style name such as ``Kotlin Script``) is kept as the editor
    wrote it.
    """
    lang = language_id.strip()
    known = _NAMES.get(lang.lower())
    if known is not None:
        return known
    if _ID_SHAPE.match(lang):
        return lang[:1].upper() + lang[1:]
    return lang


def language_for_file(file_name: str) -> str | None:
    """Guess a language id from a file name, for sources that only see names."""
    name = file_name.strip().lower()
    if name in _FILE_NAMES:
        return _FILE_NAMES[name]
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return None
    return _EXTENSIONS.get(ext)
