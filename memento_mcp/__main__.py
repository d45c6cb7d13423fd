from memento_mcp.cli import app

app()
