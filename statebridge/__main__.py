from statebridge.cli.main import app

app(prog_name="statebridge")
