"""Loaded with ``-p`` before Django starts: the test run's environment."""

import os

os.environ.setdefault("Q_SYNC", "1")  # django-q2 runs jobs inline in tests
os.environ.setdefault("DJANGO_DEBUG", "1")
