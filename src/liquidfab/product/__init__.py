"""Products defined as code: the definition format, the configurator, AAS export and
the value model.

A product is one versioned YAML file (``ProductFile``); ``load_product`` checks it and
compiles every expression, and everything downstream reads the resulting ``Product``.
"""

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

__all__ = [
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
    "evaluate",
    "load_product",
    "parse",
    "product_from_data",
    "product_json_schema",
]
