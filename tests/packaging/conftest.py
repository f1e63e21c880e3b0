"""Packaging tests: any Qt in this process runs offscreen (the self-test runs in subprocesses)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
