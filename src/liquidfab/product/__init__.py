"""Products defined as code: the definition format, the configurator, AAS export and
the value model.

A product is one versioned YAML file (``ProductFile``); ``load_product`` checks it and
compiles every expression, and everything downstream reads the resulting ``Product``.
"""

from liquidfab.product.aas import AasExport, type_shell, unit_shell, verify_environment
from liquidfab.product.configurator import Configurator
from liquidfab.product.definition import (
    Constraint,
    Feature,
    Line,
    Operation,
    Option,
    Part,
    PriceRule,
    Product,
    load_product,
    product_from_data,
)
from liquidfab.product.expressions import ExpressionError, evaluate, parse
from liquidfab.product.format import ProductFile, product_json_schema
from liquidfab.product.resolved import Resolved, coerce_choices, resolve
from liquidfab.product.value import ValueReport, value_model
from liquidfab.product.value_chart import write_chart

__all__ = [
    "AasExport",
    "Configurator",
    "Constraint",
    "ExpressionError",
    "Feature",
    "Line",
    "Operation",
    "Option",
    "Part",
    "PriceRule",
    "Product",
    "ProductFile",
    "Resolved",
    "ValueReport",
    "coerce_choices",
    "evaluate",
    "load_product",
    "parse",
    "product_from_data",
    "product_json_schema",
    "resolve",
    "type_shell",
    "unit_shell",
    "value_model",
    "verify_environment",
    "write_chart",
]
