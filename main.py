"""Latent Explorer: `python main.py` opens the app; `python main.py train ...` runs the CLI."""

from explorer.entry import main

if __name__ == "__main__":
    main()
