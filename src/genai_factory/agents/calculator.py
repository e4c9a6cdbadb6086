"""``calculator``: safe arithmetic for agents, evaluated from the syntax tree (never ``eval``).

:func:`evaluate` parses the expression with :func:`ast.parse` and walks the tree itself, allowing
only numbers, ``+ - * / // % **``, unary ``+ -``, parentheses and a few named functions
(``abs round min max sqrt``). Everything else is refused: names, attributes, subscripts, strings,
comparisons, lambdas, calls of anything else. Huge work is refused before it is done: exponents
above :data:`MAX_EXPONENT`, integers above :data:`MAX_INT_BITS` bits, expressions longer than
:data:`MAX_EXPRESSION_CHARS`.
"""

from __future__ import annotations

import ast
import asyncio
import math
import operator
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from genai_factory.exceptions import ToolError

Number = int | float

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1_000
MAX_INT_BITS = 4_096

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class CalculatorError(ToolError):
    """The expression is not plain arithmetic, or it would be too costly to compute."""

    code = "calculator_error"


def _round(value: Number, digits: Number = 0) -> Number:
    if not isinstance(digits, int) or not -20 <= digits <= 20:
        raise CalculatorError("round() takes a whole number of digits between -20 and 20")
    return round(value, digits) if digits else round(value)


def _sqrt(value: Number) -> Number:
    if value < 0:
        raise CalculatorError("sqrt() of a negative number")
    return math.sqrt(value)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": _sqrt,
}


def evaluate(expression: str) -> Number:
    """The value of an arithmetic ``expression``.

    Raises:
        CalculatorError: anything but plain arithmetic, a huge exponent or result, or a
            division by zero.
    """
    text = expression.strip().replace("×", "*").replace("÷", "/")
    if not text:
        raise CalculatorError("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculatorError(f"not an arithmetic expression: {text!r}") from None
    try:
        return _checked(_eval(tree.body))
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("the result is too large") from None


def format_number(value: Number) -> str:
    """``12``, ``0.3`` (not ``0.30000000000000004``), ``1.5e+20``."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.BinOp):
        return _binary(node)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.Call):
        return _call(node)
    raise CalculatorError(f"not allowed in arithmetic: {_describe(node)}")


def _constant(value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalculatorError(f"only numbers are allowed, not {value!r}")
    return _checked(value)


def _binary(node: ast.BinOp) -> Number:
    if isinstance(node.op, ast.BitXor):
        raise CalculatorError("'^' is not a power here; write ** for powers")
    left, right = _eval(node.left), _eval(node.right)
    if isinstance(node.op, ast.Pow):
        return _power(left, right)
    function = _BINARY.get(type(node.op))
    if function is None:
        raise CalculatorError(f"operator not allowed: {type(node.op).__name__}")
    if isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int):
        _check_bits(left.bit_length() + right.bit_length())
    return _checked(function(left, right))


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponents above {MAX_EXPONENT} are not allowed")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        _check_bits(max(base.bit_length(), 1) * exponent)
    result = base**exponent
    if isinstance(result, complex):
        raise CalculatorError("the result is not a real number")
    return _checked(result)


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        allowed = ", ".join(sorted(_FUNCTIONS))
        raise CalculatorError(f"only these functions are allowed: {allowed}")
    if node.keywords or not node.args or len(node.args) > 20:
        raise CalculatorError(f"{node.func.id}() takes 1 to 20 numbers and no keywords")
    args = [_eval(arg) for arg in node.args]
    try:
        return _checked(_FUNCTIONS[node.func.id](*args))
    except TypeError:
        raise CalculatorError(f"wrong number of arguments for {node.func.id}()") from None


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise CalculatorError(f"the result would exceed {MAX_INT_BITS} bits")


def _checked(value: Number) -> Number:
    if isinstance(value, int):
        _check_bits(value.bit_length())
    elif not math.isfinite(value):
        raise CalculatorError("the result is not a finite number")
    return value


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Attribute):
        return f"the attribute .{node.attr}"
    return type(node).__name__


class CalculatorArgs(BaseModel):
    """Arguments of ``calculator``."""

    model_config = ConfigDict(extra="forbid")

    expression: str = Field(
        min_length=1,
        max_length=MAX_EXPRESSION_CHARS,
        description="Arithmetic with numbers, + - * / // % **, parentheses, abs round min max sqrt.",
    )


class CalculatorTool:
    """``calculator``: evaluate an arithmetic expression exactly as written."""

    name = "calculator"
    description = (
        "Compute an arithmetic expression, e.g. (89 + 25.5) * 2. "
        "Numbers, + - * / ** and parentheses only."
    )
    args_schema: type[CalculatorArgs] = CalculatorArgs

    def __init__(self, *, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s

    async def run(self, args: CalculatorArgs) -> str:
        """The value of ``args.expression`` as text (computed in a worker thread)."""
        value = await asyncio.to_thread(evaluate, args.expression)
        return format_number(value)
