"""The probe's cellular modem: what it sees of the radio network.

Two backends behind one interface (`observe.ModemBackend`): ModemManager
through `mmcli` JSON (`mmcli.py`) where it runs, and AT commands over the
modem's serial port (`at.py`) where it does not. The operator table
(`operators.csv`) names networks by MCC-MNC. Nothing here reads or reports
the SIM's numbers (IMSI, ICCID, MSISDN) or the modem's IMEI.
"""
