"""The probe's cellular modem: what it sees of the radio network.

Two backends behind one interface (`observe.ModemBackend`): ModemManager
through `mmcli` JSON (`mmcli.py`) where it runs, and AT commands over the
modem's serial port (`at.py`, with its serial I/O in `at_port.py` and its
pure response parsers in `at_parse.py`) where it does not. `observe.py`
holds what both share (the observation, its problems, the settings and the
rules of recording); `backends.py` picks a backend from the settings, so
that the backends depend on `observe.py` and never the reverse. The
operator table (`operators.csv`, read by `operators.py`) names networks by
MCC-MNC, and `bands.py` finds LTE and NR bands from channel numbers. Nothing here reads or reports
the SIM's numbers (IMSI, ICCID, MSISDN) or the modem's IMEI.
"""
