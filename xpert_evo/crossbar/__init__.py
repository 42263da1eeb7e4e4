"""How the chip computes a trained network: functional crossbar simulation and precision penalty.

simulate.py runs a trained network the way the crossbar does (sliced weights, bit-serial inputs,
ADC rounding; it reads the same hardware config as the cost model); penalty.py predicts the
accuracy lost to input and ADC precision without simulating.
"""
