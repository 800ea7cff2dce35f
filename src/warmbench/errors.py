"""User-facing errors: the CLI prints these as one clean line, never a traceback."""


class WarmbenchError(Exception):
    """A problem the user can fix (bad input, missing extra, bad config)."""


class InputError(WarmbenchError):
    """Bad input data: the message names the file, the row/line and the field."""

    def __init__(self, path: object, where: object, field: str | None, problem: str):
        loc = f"{path}"
        if where is not None:
            loc += f":{where}"
        if field:
            loc += f": field '{field}'"
        super().__init__(f"{loc}: {problem}")


class MissingExtraError(WarmbenchError):
    def __init__(self, package: str, extra: str, what: str):
        super().__init__(
            f"{what} needs the '{package}' package: install it with "
            f"`pip install 'warmbench[{extra}]'` (or `pip install {package}`)."
        )
