"""kuaishu (块数): the platform on which a region's government gathers, shares and opens its data."""

__version__ = "0.1.0"
