"""k_module_problem's style: the program returns a dict of strings, loaded with importlib inside evaluate."""

OPTIONS = {
    "loader": ["csv", "json", "parquet", "sql"],
    "cleaner": ["drop", "impute", "clip", "none"],
    "encoder": ["onehot", "ordinal", "hash", "embed"],
    "model": ["linear", "tree", "forest", "boost"],
}
ANSWER = {"loader": "json", "cleaner": "impute", "encoder": "onehot", "model": "boost"}


def evaluate(program_path: str) -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location("pipeline", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.configure_pipeline()
    if not isinstance(config, dict):
        return {"combined_score": 0.0, "error": f"configure_pipeline returned {type(config).__name__}"}
    unknown = [k for k, v in config.items() if v not in OPTIONS.get(k, [])]
    if unknown:
        return {"combined_score": 0.0, "error": f"unknown options for {', '.join(unknown)}"}
    correct = sum(config.get(k) == v for k, v in ANSWER.items())
    return {"combined_score": correct / len(ANSWER), "correct_modules": correct}
