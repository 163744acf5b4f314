"""The pool on disk: where it is, what folders it has, and who lives in it."""
