"""bybit_hybrid: thin I/O adapters around the sans-IO `bybit_hybrid_core`."""
