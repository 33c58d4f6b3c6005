"""STAND-IN for python-fire's `fire.Fire(fn)`, only as the Python FlockServe's CLI uses it: turns
`--name value`, `--name=value` and a bare `--name` (True) into keyword arguments of `fn`, each
value read as a Python literal where it is one (`4` is an int), as Fire does, else as a string."""

import ast
import sys


def _value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def Fire(component, command=None):
    args = list(sys.argv[1:] if command is None else command)
    kwargs = {}
    while args:
        arg = args.pop(0)
        if not arg.startswith("--"):
            sys.exit(f"fire stand-in: only --name value arguments are understood, not {arg!r}")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            value = args.pop(0) if args and not args[0].startswith("--") else "True"
        kwargs[name.replace("-", "_")] = _value(value)
    return component(**kwargs)
