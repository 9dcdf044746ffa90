"""In-process tests of the feedback store: ``.venv-drift/bin/python -m pytest tests/feedback/unit``."""
