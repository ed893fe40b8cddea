"""Choose one option per pipeline stage; the score counts the stages that match the hidden answer."""


# EVOLVE-BLOCK-START
def configure_pipeline():
    return {
        "loader": "csv",
        "cleaner": "drop",
        "encoder": "onehot",
        "model": "linear",
    }
# EVOLVE-BLOCK-END
