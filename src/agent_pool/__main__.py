"""`python -m agent_pool` runs the command-line interface."""

from agent_pool.cli.main import main

if __name__ == "__main__":
    main()
