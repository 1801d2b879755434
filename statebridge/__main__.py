from statebridge.cli import app

app(prog_name="statebridge")
