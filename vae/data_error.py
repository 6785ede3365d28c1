"""DataError: what every data source raises, one line naming the path, the problem and the fix."""


class DataError(ValueError):
    """Missing or malformed data; the one-line message names the path, the problem and the fix."""


def data_error(path, problem, fix):
    return DataError(f"data: {path}: {problem}; {fix}")


def one_line(err):
    """`TypeName: message` on one line and short, for quoting a library's error."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__
