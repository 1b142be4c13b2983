"""The government data resource catalog (政务数据资源目录)."""
