"""``python -m cnnbench.bare``: the hand-written training loop."""

from cnnbench.bare.training import main

if __name__ == "__main__":
    main()
