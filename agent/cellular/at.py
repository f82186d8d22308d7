"""The AT backend: observes a modem over its serial port with AT commands.

This module decides what to ask and how the answers add up to one
observation; the serial I/O is `at_port.py` and the reading of each answer
`at_parse.py`. A Quectel module is asked `AT+QENG="servingcell"` and
`AT+QNWINFO` for band, channel, cell and signal figures; any other modem
(or one that refuses `+QENG`) is observed through 3GPP TS 27.007's commands
alone (`+COPS`, `+CSQ`, `+CPIN`, `+CREG`/`+CEREG`/`+C5GREG`), without band,
channel or RSRP. Registered on any domain counts as registered, unless the
serving cell says it gives no service (SEARCH, LIMSRV): it decides. The
SIM's identities are never asked for (no `+CIMI`, `+QCCID`, `+CNUM`).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.cellular.at_parse import (
    ModemIdentity,
    band_number,
    best_registration,
    parse_ati,
    parse_cgmm,
    parse_cops,
    parse_csq,
    parse_qeng_servingcell,
    parse_qnwinfo,
    read_regs,
    sim_problem,
)
from agent.cellular.at_port import AtError, AtPort
from agent.cellular.observe import (
    AccessTech,
    ModemProblem,
    ProblemKind,
    RadioObservation,
    Registration,
    as_recorded,
)

BACKEND = "at"
_REGISTERED = (Registration.HOME, Registration.ROAMING)


@dataclass
class AtBackend:
    """Observes the modem behind `port` (a /dev/serial/by-id/... link survives
    re-enumeration; a bare /dev/ttyUSBn may not)."""

    port: str
    timeout_s: float = 3.0
    name: str = BACKEND
    _known: RadioObservation | None = None  # what this observation learnt so far

    def observe(self) -> RadioObservation:
        """One observation through a freshly opened port (see module doc)."""
        if not self.port:
            raise ModemProblem(ProblemKind.NOT_CONFIGURED, "[modem] serial_port is empty")
        self._known = None
        with AtPort(self.port, self.timeout_s) as port:
            try:
                return self._observe(port)
            except AtError as err:
                raise ModemProblem(
                    ProblemKind.MODEM_FAILED,
                    f"the modem refused {err.command} ({err.final})",
                    self._known,
                ) from err
            except ValueError as err:
                raise ModemProblem(
                    ProblemKind.GARBAGE, f"malformed output: {err}", self._known
                ) from err
            except ModemProblem as problem:
                # A timeout or unplugging after the modem named itself still
                # tells which modem it was (and whether it can do 5G).
                if problem.partial is None:
                    problem.partial = self._known
                raise

    def _observe(self, port: AtPort) -> RadioObservation:
        port.command("ATE0")  # no echo; AtPort drops echoed commands anyway
        ati = port.command("ATI")
        identity = parse_ati(ati.lines) if ati.ok else ModemIdentity("", "", "")
        model = identity.model or parse_cgmm(port.query("AT+CGMM").lines)
        quectel = identity.manufacturer.lower().startswith("quectel")
        # A modem that knows +C5GREG (3GPP Rel-15) can register on 5G; an
        # LTE module (EC25) answers ERROR. This is the capability, not the network.
        c5greg = port.command("AT+C5GREG?")
        base = RadioObservation(
            backend=BACKEND,
            modem_model=model,
            modem_5g_capable=c5greg.ok,
            tool_version=identity.revision,
        )
        self._known = base
        self._check_sim(port, base)

        regs = []
        if c5greg.ok:
            regs += read_regs(c5greg.prefixed("+C5GREG:"), area_bits=24)
        # TAC and cell id in the read form; n=2 also turns on unsolicited
        # +CEREG lines, so it is turned off again right after the read.
        port.command("AT+CEREG=2")
        cereg = port.command("AT+CEREG?")
        if cereg.ok:
            regs += read_regs(cereg.prefixed("+CEREG:"))
        port.command("AT+CEREG=0")
        creg = port.command("AT+CREG?")
        if creg.ok:
            regs += read_regs(creg.prefixed("+CREG:"))
        registration = best_registration([r[0] for r in regs])

        port.command("AT+COPS=3,2")  # numeric operator in +COPS?
        cops = port.query("AT+COPS?").prefixed("+COPS:")
        numeric, cops_act = parse_cops(cops[0]) if cops else ("", None)
        csq = port.command("AT+CSQ")
        csq_rssi = parse_csq(csq.prefixed("+CSQ:")[0]) if csq.ok and csq.prefixed("+CSQ:") else None

        obs = base.with_(registration_state=str(registration), rssi_dbm=csq_rssi)
        qeng = port.command('AT+QENG="servingcell"') if quectel else None
        if qeng is not None and qeng.ok:
            cell = parse_qeng_servingcell(qeng.lines, model)
            if cell.registration_state and registration in _REGISTERED:
                # The 3GPP commands said registered (another domain, a stale
                # answer) but the serving cell gives no service: it decides.
                obs = obs.with_(registration_state=cell.registration_state)
            nwinfo = parse_qnwinfo(port.command("AT+QNWINFO").lines)
            nr_info = [n for n in nwinfo if "NR5G" in n.act]
            obs = obs.with_(
                access_tech=cell.access_tech,
                mcc_mnc=numeric or cell.mcc_mnc,
                band=cell.band,
                channel=cell.channel,
                cell_id=cell.cell_id,
                tac=cell.tac,
                rsrp_dbm=cell.rsrp_dbm,
                rsrq_db=cell.rsrq_db,
                sinr_db=cell.sinr_db,
                sinr_raw=cell.sinr_raw,
                sinr_conversion=cell.sinr_conversion,
                rssi_dbm=cell.rssi_dbm if cell.rssi_dbm is not None else csq_rssi,
                rscp_dbm=cell.rscp_dbm,
                ecio_db=cell.ecio_db,
                nr_rsrp_dbm=cell.nr_rsrp_dbm,
                nr_sinr_db=cell.nr_sinr_db,
                nr_sinr_raw=cell.nr_sinr_raw,
                nr_sinr_conversion=cell.nr_sinr_conversion,
                # Older NSA lines carry no NR band; +QNWINFO's NR line does.
                nr_band=cell.nr_band
                if cell.nr_band is not None or cell.access_tech != AccessTech.NR5G_NSA
                else (band_number(nr_info[0].band) if nr_info else None),
            )
        else:
            # Any other modem: what 3GPP's commands tell (no band, no RSRP).
            reg_cells = [(t, c) for s, t, c in regs if s in _REGISTERED and (t or c)]
            tac, cell_id = reg_cells[0] if reg_cells else ("", "")
            obs = obs.with_(
                access_tech=cops_act or AccessTech.NONE,
                mcc_mnc=numeric,
                tac=tac,
                cell_id=cell_id,
            )
        # Camping on a cell without registration (emergency calls only) is not
        # service: the availability shares must not count it (as_recorded).
        return as_recorded(obs)

    @staticmethod
    def _check_sim(port: AtPort, base: RadioObservation) -> None:
        problem = sim_problem(port.command("AT+CPIN?"))
        if problem is not None:
            raise ModemProblem(*problem, base)
