"""How the chip computes a trained network: functional crossbar simulation and precision penalty.

simulate.py runs a trained network the way the crossbar does (`CrossbarNetwork`: sliced weights,
bit-serial inputs, ADC rounding); quantise.py holds its number formats (`CrossbarSpec`, read with
the same hardware config as the cost model); evaluate.py measures a genome's crossbar accuracy;
penalty.py predicts the accuracy lost to input and ADC precision without simulating.
"""
