"""The registered benchmarks, one module each: importing a module registers its benchmark (`lmrec.bench.registry`)."""
