from indexer.cli import app

app(prog_name="flowfi")
