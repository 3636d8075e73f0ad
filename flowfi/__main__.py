from flowfi.cli import app

app(prog_name="flowfi")
