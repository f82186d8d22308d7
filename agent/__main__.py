"""`python -m agent` is `wardprobe-agent`."""

from agent.cli import app

if __name__ == "__main__":
    app(prog_name="wardprobe-agent")
