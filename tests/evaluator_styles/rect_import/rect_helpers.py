"""The evaluator's own helper module: it loads the program with importlib imported inside a function."""


def program_length(program_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("again", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return len(module.circles())
