"""Simulated field devices speaking the real protocols, for tests and the demo.

They share one plant model (plant.py) so the loop closes: the inverter's
power moves the battery's SOC and temperature, which the BMS reports.
"""
