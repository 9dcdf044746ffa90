"""``python -m rollout`` is the ``rollout`` console script."""

from .cli import main

if __name__ == "__main__":
    main()
