"""Thin DVC stage entry points: params and arguments in, one library call (see ARCHITECTURE.md)."""
