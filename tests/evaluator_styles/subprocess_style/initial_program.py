# EVOLVE-BLOCK-START
def run_packing():
    return [0.1, 0.2]
# EVOLVE-BLOCK-END
