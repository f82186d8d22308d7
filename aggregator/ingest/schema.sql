-- The store's tables: what an analyst queries. docs/schema.md documents each
-- column; tests/aggregator/ingest/test_schema_doc.py checks that it matches DESCRIBE.
--
-- Every result table has the same leading columns (the envelope), then the
-- figures of its kind. Units are in the column names. A figure that was not
-- measured is NULL. Times are TIMESTAMPTZ (stored as UTC; Cần Thơ is UTC+7).

create table if not exists probes (
    probe_id        varchar primary key,  -- the subject CN of the probe's client certificate
    ward_code       integer not null,     -- GSO code of the ward the probe is assigned to
    ward_name       varchar,
    site_class      varchar not null,     -- household, ward_office, city_department, school, health_facility, high_tech_park, it_park, industrial_zone, rd_centre, other
    hostname        varchar,
    agent_version   varchar,
    enrolled_at     timestamptz not null,
    cert_serial     varchar,              -- hex serial of the current certificate
    cert_not_after  timestamptz,
    cert_state      varchar not null,     -- active | revoked
    revoked_at      timestamptz,
    isp             varchar,              -- the site's fixed-broadband ISP (fixed_isps.csv); NULL: not recorded
    plan_down_mbps  double,               -- the fixed line's advertised download speed (QCVN 34 Vd); NULL: not recorded
    plan_up_mbps    double                -- and its advertised upload speed (Vu)
);

create table if not exists throughput (
    result_id         uuid not null,      -- UUIDv7 made on the probe; one result in the whole store (result_ids)
    probe_id          varchar not null,
    ward_code         integer not null,   -- the ward the probe was in when it measured
    measured_at       timestamptz not null,
    received_at       timestamptz not null,
    agent_version     varchar,
    interface         varchar,
    network_kind      varchar not null,   -- fixed | mobile
    ip_family         varchar,            -- ipv4 | ipv6 (the family actually used)
    clock_sync        varchar not null,   -- synchronised | unsynchronised | unknown
    tool              varchar,
    tool_version      varchar,
    server            varchar,
    server_port       integer,
    duration_s        double,             -- configured test length
    streams           integer,
    status            varchar not null,   -- ok | failed | skipped
    status_reason     varchar,
    status_reason_kind varchar,           -- none | deferred | timeout | ... (docs/schema.md); NULL: older agent
    direction         varchar not null,   -- download | upload
    mbps              double,             -- megabits (10^6 bit) per second, warm-up excluded
    bytes_transferred ubigint,
    measured_s        double,             -- seconds the rate was computed over
    retransmits       integer,
    omitted_s         double,             -- warm-up seconds discarded
    link_speed_mbps   double,             -- negotiated speed of the probe's interface
    mtu               integer,
    local_address     varchar,
    idle_rtt_median_ms   double,          -- just before the transfer
    loaded_rtt_median_ms double,          -- while the transfer ran
    loaded_rtt_p95_ms    double,
    cross_traffic_bytes_per_s double,     -- other traffic on the interface before the test
    cpu_load_pct      double,             -- probe CPU load before the test, 0..100
    access_tech       varchar,            -- mobile: radio at the start of the test
    access_tech_end   varchar,            -- and at its end
    mcc_mnc           varchar,
    operator_name     varchar,
    synthetic         boolean not null default false  -- made by the synthetic generator, not a probe
);

create table if not exists latency (
    result_id         uuid not null,
    probe_id          varchar not null,
    ward_code         integer not null,
    measured_at       timestamptz not null,
    received_at       timestamptz not null,
    agent_version     varchar,
    interface         varchar,
    network_kind      varchar not null,
    ip_family         varchar,
    clock_sync        varchar not null,
    tool              varchar,
    tool_version      varchar,
    server            varchar,
    server_port       integer,
    duration_s        double,
    streams           integer,
    status            varchar not null,
    status_reason     varchar,
    status_reason_kind varchar,
    protocol          varchar not null,   -- icmp | tcp
    target            varchar,
    target_port       integer,
    packets_sent      integer,
    packets_received  integer,
    rtt_min_ms        double,
    rtt_median_ms     double,
    rtt_p95_ms        double,
    rtt_max_ms        double,
    jitter_ms         double,             -- mean absolute difference of consecutive RTTs
    loss_pct          double,             -- 0..100
    access_tech       varchar,            -- mobile: radio when the test started
    mcc_mnc           varchar,
    operator_name     varchar,
    synthetic         boolean not null default false
);

create table if not exists ipv6 (
    result_id             uuid not null,
    probe_id              varchar not null,
    ward_code             integer not null,
    measured_at           timestamptz not null,
    received_at           timestamptz not null,
    agent_version         varchar,
    interface             varchar,
    network_kind          varchar not null,
    ip_family             varchar,
    clock_sync            varchar not null,
    tool                  varchar,
    tool_version          varchar,
    server                varchar,
    server_port           integer,
    duration_s            double,
    streams               integer,
    status                varchar not null,
    status_reason         varchar,
    status_reason_kind    varchar,
    has_global_address    boolean,
    has_default_route     boolean,
    aaaa_resolves         boolean,
    ipv6_only_tcp_ok      boolean,
    ipv6_only_connect_ms  double,
    large_packet_ok       boolean,
    dual_stack_family     varchar,        -- family used to reach the dual-stack target
    ipv6_capable          boolean,        -- every capability check passed
    ipv6_preferred        boolean,        -- the dual-stack target was reached over IPv6
    global_prefix         varchar,        -- the /64 only, never the host's address
    synthetic             boolean not null default false
);

create table if not exists cellular (
    result_id           uuid not null,
    probe_id            varchar not null,
    ward_code           integer not null,
    measured_at         timestamptz not null,
    received_at         timestamptz not null,
    agent_version       varchar,
    interface           varchar,
    network_kind        varchar not null,
    ip_family           varchar,
    clock_sync          varchar not null,
    tool                varchar,
    tool_version        varchar,
    server              varchar,
    server_port         integer,
    duration_s          double,
    streams             integer,
    status              varchar not null,
    status_reason       varchar,
    status_reason_kind  varchar,
    access_tech         varchar,          -- none | gsm | umts | lte | nr5g_nsa | nr5g_sa
    mcc_mnc             varchar,
    operator_name       varchar,
    band                integer,
    channel             integer,          -- EARFCN / NR-ARFCN
    cell_id             varchar,
    tac                 varchar,
    rsrp_dbm            double,
    rsrq_db             double,
    sinr_db             double,
    registration_state  varchar,
    modem_model         varchar,
    modem_5g_capable    boolean,
    backend             varchar,          -- modemmanager | at
    nr_band             integer,
    nr_rsrp_dbm         double,
    nr_sinr_db          double,
    synthetic           boolean not null default false,
    pci                 integer,          -- physical cell id of the serving cell
    nr_channel          integer,          -- NSA: the 5G leg's NR-ARFCN
    nr_pci              integer,          -- NSA: the 5G leg's physical cell id
    rssi_dbm            double,           -- the serving carrier's RSSI (GSM, UMTS, LTE)
    rscp_dbm            double,           -- UMTS
    ecio_db             double,           -- UMTS
    sinr_raw            double,           -- sinr_db as the modem printed it
    sinr_conversion     varchar,          -- as_printed | tenths | fifths_minus_20
    nr_sinr_raw         double,
    nr_sinr_conversion  varchar
);

-- The per-hop and per-query lists are LIST of STRUCT columns, one row per
-- result (docs/schema.md says why): `unnest(hops)` gives a row per hop.
create table if not exists traceroute (
    result_id           uuid not null,
    probe_id            varchar not null,
    ward_code           integer not null,
    measured_at         timestamptz not null,
    received_at         timestamptz not null,
    agent_version       varchar,
    interface           varchar,
    network_kind        varchar not null,
    ip_family           varchar,
    clock_sync          varchar not null,
    tool                varchar,
    tool_version        varchar,
    server              varchar,
    server_port         integer,
    duration_s          double,
    streams             integer,
    status              varchar not null,
    status_reason       varchar,
    status_reason_kind  varchar,
    protocol            varchar not null, -- icmp | udp | tcp (Paris traceroute: one flow)
    target              varchar,          -- address traced to
    target_port         integer,
    flow_id             integer,          -- the constant source port / ICMP identifier
    max_hops            integer,
    reached             boolean,          -- the target answered
    stop_reason         varchar,          -- reached | unreachable | max_hops | silent_hops
    hop_count           integer,          -- the target's hop number, when reached
    first_outside_hop   integer,          -- the first hop outside the home (after the CPE)
    first_outside_address varchar,
    home_rtt_ms         double,           -- median round trip to the CPE (last home hop)
    access_rtt_ms       double,           -- to the first hop outside the home
    target_rtt_ms       double,           -- to the target
    hops                struct(hop integer, address varchar, rtts_ms double[], probes_sent integer,
                               loss_pct double, icmp_type integer, icmp_code integer,
                               reply_ttl integer, segment varchar)[],
    access_tech         varchar,          -- mobile: radio when the test started
    mcc_mnc             varchar,
    operator_name       varchar,
    synthetic           boolean not null default false
);

create table if not exists ipv6_pmtu (
    result_id           uuid not null,
    probe_id            varchar not null,
    ward_code           integer not null,
    measured_at         timestamptz not null,
    received_at         timestamptz not null,
    agent_version       varchar,
    interface           varchar,
    network_kind        varchar not null,
    ip_family           varchar,
    clock_sync          varchar not null,
    tool                varchar,
    tool_version        varchar,
    server              varchar,
    server_port         integer,
    duration_s          double,
    streams             integer,
    status              varchar not null,
    status_reason       varchar,
    status_reason_kind  varchar,
    target              varchar,          -- the IPv6 address probed
    interface_mtu       integer,          -- the probe's own link MTU, bytes
    path_mtu            integer,          -- the largest echo, bytes, that came back
    ptb_received        boolean,          -- a Packet Too Big arrived
    pmtu_blackhole      boolean,          -- larger packets vanished with no Packet Too Big
    smallest_lost_bytes integer,
    probes_sent         integer,
    ptb_messages        struct(mtu_bytes integer, sender varchar, probe_bytes integer)[],
    synthetic           boolean not null default false
);

create table if not exists dns (
    result_id           uuid not null,
    probe_id            varchar not null,
    ward_code           integer not null,
    measured_at         timestamptz not null,
    received_at         timestamptz not null,
    agent_version       varchar,
    interface           varchar,
    network_kind        varchar not null,
    ip_family           varchar,
    clock_sync          varchar not null,
    tool                varchar,
    tool_version        varchar,
    server              varchar,
    server_port         integer,
    duration_s          double,
    streams             integer,
    status              varchar not null,
    status_reason       varchar,
    status_reason_kind  varchar,
    resolver            varchar,          -- the resolver's address
    resolver_kind       varchar,          -- system | configured
    resolver_port       integer,
    queries_sent        integer,
    queries_failed      integer,
    failure_pct         double,           -- 0..100
    time_median_ms      double,           -- median over the answered queries
    queries             struct(hostname varchar, rdtype varchar, rcode varchar, answers varchar[],
                               time_ms double, transport varchar, failed boolean,
                               reason varchar)[],
    synthetic           boolean not null default false
);

-- IPv6 readiness of the city's own services (agent/measurements/ipv6_services.py):
-- one row per run over the service list, each service's checks in `checks`.
create table if not exists ipv6_services (
    result_id           uuid not null,
    probe_id            varchar not null,
    ward_code           integer not null,
    measured_at         timestamptz not null,
    received_at         timestamptz not null,
    agent_version       varchar,
    interface           varchar,
    network_kind        varchar not null,
    ip_family           varchar,
    clock_sync          varchar not null,
    tool                varchar,
    tool_version        varchar,
    server              varchar,
    server_port         integer,
    duration_s          double,
    streams             integer,
    status              varchar not null,
    status_reason       varchar,
    status_reason_kind  varchar,
    resolver            varchar,          -- the resolver the names were asked of
    services_checked    integer,
    services_ready      integer,          -- with every applicable check passed
    checks              struct(hostname varchar, department varchar, kind varchar, aaaa_ok boolean,
                               aaaa varchar[], web_ok boolean, connect_ms double,
                               tls_ms double, ns_ok boolean, mx_ok boolean, ready boolean,
                               aaaa_reason varchar, web_reason varchar, ns_reason varchar,
                               mx_reason varchar)[],
    synthetic           boolean not null default false
);

-- Baselines of the indicators from outside the store: figures imported by
-- `wardprobe-aggregator baseline import` (e.g. VNNIC's 2024 medians) and
-- Ookla's open performance tiles summed per ward and quarter by
-- `baseline import-ookla` (analysis/ookla.py). The snapshot copies it whole.
create table if not exists baseline (
    scope         varchar not null,   -- city | ward
    ward_code     integer,            -- the ward, when scope = ward
    year          integer not null,
    network_kind  varchar not null,   -- fixed | mobile
    access_tech   varchar,            -- lte, nr5g_nsa, ...; NULL for all technologies
    statistic     varchar not null,   -- mean | median (VNNIC publishes medians)
    value_mbps    double not null,    -- download, megabits per second
    sample_size   integer,            -- tests behind the figure, when the source says
    source        varchar not null,   -- who published it, where
    imported_at   timestamptz not null,
    origin        varchar not null default 'csv',  -- csv (baseline import) | ookla_tiles
    quarter       integer,            -- 1..4: the quarter the row covers (Ookla); NULL: the year
    devices       bigint,             -- Ookla: the tiles' unique devices, summed over the tiles
    tiles         integer,            -- Ookla: the scope's tiles in the quarter
    licence       varchar             -- the figure's licence, when its source states one
);

-- Published IPv6 figures set beside the probes' own (analysis/reference_figures.py):
-- APNIC Labs' IPv6-capable rates per economy and per network (AS), imported by
-- `wardprobe-aggregator reference-figures import-apnic`, and provincial figures
-- (VNNIC's) by `reference-figures import-vnnic`. The snapshot copies both whole.
create table if not exists reference_apnic_ipv6 (
    scope          varchar not null,   -- economy | network
    economy        varchar not null,   -- ISO 3166 alpha-2 code, VN
    asn            bigint,             -- the network's AS number; NULL for an economy
    name           varchar not null,   -- the economy's or the AS's name, as APNIC gives it
    capable_pct    double not null,    -- IPv6 capable, percent of samples
    preferred_pct  double not null,    -- IPv6 preferred, percent of samples
    samples        bigint not null,
    published_on   date not null,      -- the day APNIC's page showed the figures
    source         varchar not null,
    imported_at    timestamptz not null
);
create table if not exists reference_province_ipv6 (
    province_code  integer not null,   -- GSO code (34 provinces since 2025)
    province_name  varchar not null,
    metric         varchar not null,   -- information_portal | public_service_portal
    value_pct      double not null,    -- percent
    published_on   date not null,      -- the day the figure describes
    source         varchar not null,
    imported_at    timestamptz not null
);

-- Ward populations that nr_population_share weighs each ward's 5G by:
-- `wardprobe-aggregator population import FILE.csv` (analysis/population.py;
-- a year imported again replaces that year's rows) and the synthetic city's
-- made-up ones (synthetic = true). The snapshot copies it whole.
create table if not exists ward_population (
    ward_code     integer not null,   -- GSO code of a Cần Thơ ward
    year          integer not null,   -- the year the count is of
    population    bigint not null,    -- people
    source        varchar not null,   -- who counted them
    imported_at   timestamptz not null,
    synthetic     boolean not null default false
);

-- Every stored result's id, whatever table its body is in: a UUIDv7 names one
-- result in the whole store. Ingest looks a group's ids up here and stores
-- only the bodies whose id is new, with their ids, in one transaction. No
-- key: rows are appended in commit order, so each row group holds the ids of
-- a narrow time span and the lookup reads only the row groups whose zone
-- map (min, max) covers the group's ids (aggregator/ingest/store.py).
create table if not exists result_ids (
    result_id     uuid not null,
    result_table  varchar not null    -- throughput | latency | ipv6 | cellular | traceroute | ipv6_pmtu | dns | ipv6_services
);
