def register(sub):  # placeholder until the CLI lands
    pass
