#!/usr/bin/env bash
# The real receivers the tests and the demo use: Arize Phoenix (trace backend
# with a REST API) and rotel (OpenTelemetry collector, forwarding to Phoenix),
# and a second rotel that logs how many spans each request carried and drops
# them (for bursts too large to forward). Prometheus (Debian's package,
# unpacked into the cache) is installed beside them; the tests start it
# themselves, each scraping the app it starts (TRACED_PROMETHEUS names it).
#
#   scripts/receivers.sh install        install into the cache (idempotent)
#   scripts/receivers.sh start ENVFILE  start both on free loopback ports and
#                                       write their addresses to ENVFILE
#   scripts/receivers.sh stop ENVFILE   stop what `start` started, by pid
#   scripts/receivers.sh with CMD...    start them, run CMD with their addresses
#                                       in the environment, stop them after
#
# The cache is $TRACED_CACHE, else $XDG_CACHE_HOME/traced, else ~/.cache/traced.
set -euo pipefail

PHOENIX_VERSION=20.26.1
ROTEL_VERSION=0.0.1a15
# The reference Python SDK, for the interop tests, and an SSE parser for
# its streaming calls.
OTEL_PY_VERSION=1.45.2
HTTPX_SSE_VERSION=0.4.3

cache="${TRACED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/traced}"
venv="$cache/receivers"
stamp="$venv/.installed-$PHOENIX_VERSION-$ROTEL_VERSION-$OTEL_PY_VERSION-$HTTPX_SSE_VERSION"

say() { echo "receivers: $*" >&2; }

prometheus_dir="$cache/prometheus"
prometheus="$prometheus_dir/usr/bin/prometheus"

install_prometheus() {
    if [[ -x "$prometheus" ]]; then
        return
    fi
    say "unpacking Debian's prometheus into $prometheus_dir (first run only)"
    local download
    download=$(mktemp -d)
    if ! (cd "$download" && apt-get download prometheus >/dev/null 2>&1); then
        rm -rf "$download"
        say "apt-get download prometheus failed: the metrics tests need Debian's prometheus package"
        return 1
    fi
    mkdir -p "$prometheus_dir"
    dpkg -x "$download"/prometheus_*.deb "$prometheus_dir"
    rm -rf "$download"
    "$prometheus" --version >/dev/null
}

install() {
    install_prometheus
    if [[ -f "$stamp" ]]; then
        return
    fi
    say "installing arize-phoenix $PHOENIX_VERSION and rotel $ROTEL_VERSION into $venv (first run only)"
    mkdir -p "$cache"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian ships venv separately (python3-venv); virtualenv from PyPI does the same job.
        say "python3 -m venv is unavailable; using virtualenv from PyPI"
        rm -rf "$venv"
        PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
            --target "$cache/virtualenv" virtualenv
        PYTHONPATH="$cache/virtualenv" python3 -m virtualenv --quiet "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "arize-phoenix==$PHOENIX_VERSION" "rotel==$ROTEL_VERSION" \
        "opentelemetry-sdk==$OTEL_PY_VERSION" "opentelemetry-exporter-otlp-proto-http==$OTEL_PY_VERSION" \
        "httpx-sse==$HTTPX_SSE_VERSION"
    touch "$stamp"
}

free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for NAME PID SECONDS COMMAND...: until COMMAND succeeds, the process dies, or time runs out.
wait_for() {
    local name=$1 pid=$2 seconds=$3
    shift 3
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "$name exited during startup"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            say "$name did not become ready within ${seconds}s"
            return 1
        fi
        sleep 0.3
    done
}

http_ok() {
    "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"
}

https_ok() {
    "$venv/bin/python" -c 'import ssl, sys, urllib.request
context = ssl.create_default_context(cafile=sys.argv[2])
if len(sys.argv) > 3:
    context.load_cert_chain(sys.argv[3], sys.argv[4])
urllib.request.urlopen(sys.argv[1], timeout=2, context=context)' "$@"
}

port_open() {
    "$venv/bin/python" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1"
}

# A throwaway CA, a server certificate for 127.0.0.1 for the TLS receivers,
# and a client certificate for the one that requires mutual TLS.
make_certificates() {
    "$venv/bin/python" - "$1" <<'PY'
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def write(path, data):
    with open(f"{out}/{path}", "wb") as f:
        f.write(data)
ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name("traced test CA")).issuer_name(name("traced test CA"))
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                   key_encipherment=False, data_encipherment=False, key_agreement=False,
                                   encipher_only=False, decipher_only=False), critical=True)
      .sign(ca_key, hashes.SHA256()))
key = ec.generate_private_key(ec.SECP256R1())
cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256()))
client_key = ec.generate_private_key(ec.SECP256R1())
client = (x509.CertificateBuilder().subject_name(name("traced test client")).issuer_name(ca.subject)
          .public_key(client_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
          .sign(ca_key, hashes.SHA256()))
write("client.pem", client.public_bytes(serialization.Encoding.PEM))
write("client.key", client_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
write("ca.pem", ca.public_bytes(serialization.Encoding.PEM))
write("server.pem", cert.public_bytes(serialization.Encoding.PEM))
write("server.key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
PY
}

# start_phoenix DIR HTTP_PORT GRPC_PORT [TLS_DIR [mutual]]: prints the pid.
start_phoenix() {
    local dir=$1 port=$2 grpc=$3 tls=${4:-} mutual=${5:-}
    mkdir -p "$dir"
    (
        if [[ -n "$tls" ]]; then
            export PHOENIX_TLS_ENABLED=true PHOENIX_TLS_CERT_FILE="$tls/server.pem" PHOENIX_TLS_KEY_FILE="$tls/server.key"
        fi
        if [[ -n "$mutual" ]]; then
            export PHOENIX_TLS_VERIFY_CLIENT=true PHOENIX_TLS_CA_FILE="$tls/ca.pem"
        fi
        PHOENIX_WORKING_DIR="$dir" PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=$port PHOENIX_GRPC_PORT=$grpc \
            PHOENIX_TELEMETRY_ENABLED=false exec "$venv/bin/phoenix" serve >"$dir.log" 2>&1
    ) &
    echo $!
}

# One function pair per receiver: launch_NAME picks fresh ports and starts
# it (its pid in pid_of[NAME]); ready_NAME waits until it answers. They read
# and set start's locals.
launch_phoenix() {
    phoenix_port=$(free_port)
    phoenix_grpc=$(free_port)
    pid_of[phoenix]=$(start_phoenix "$run_dir/phoenix" "$phoenix_port" "$phoenix_grpc")
}
ready_phoenix() { wait_for phoenix "${pid_of[phoenix]}" 180 http_ok "http://127.0.0.1:$phoenix_port/healthz"; }

# A second Phoenix behind TLS, on HTTP and gRPC, trusting nothing but its own CA.
launch_phoenix_tls() {
    tls_port=$(free_port)
    tls_grpc=$(free_port)
    pid_of[phoenix_tls]=$(start_phoenix "$run_dir/phoenix_tls" "$tls_port" "$tls_grpc" "$run_dir/tls")
}
ready_phoenix_tls() {
    wait_for "phoenix (TLS)" "${pid_of[phoenix_tls]}" 180 https_ok "https://127.0.0.1:$tls_port/healthz" \
        "$run_dir/tls/ca.pem"
}

# A third that also requires a client certificate signed by that CA.
launch_phoenix_mtls() {
    mtls_port=$(free_port)
    mtls_grpc=$(free_port)
    pid_of[phoenix_mtls]=$(start_phoenix "$run_dir/phoenix_mtls" "$mtls_port" "$mtls_grpc" "$run_dir/tls" mutual)
}
ready_phoenix_mtls() {
    wait_for "phoenix (mutual TLS)" "${pid_of[phoenix_mtls]}" 180 https_ok "https://127.0.0.1:$mtls_port/healthz" \
        "$run_dir/tls/ca.pem" "$run_dir/tls/client.pem" "$run_dir/tls/client.key"
}

# rotel forwards to the first Phoenix (started, and ready, before it).
launch_rotel() {
    rotel_grpc=$(free_port)
    rotel_http=$(free_port)
    "$venv/lib/python3"*/site-packages/rotel/rotel-agent start \
        --otlp-grpc-endpoint "127.0.0.1:$rotel_grpc" --otlp-http-endpoint "127.0.0.1:$rotel_http" \
        --debug-log traces --debug-log-verbosity detailed \
        --exporter otlp --otlp-exporter-endpoint "http://127.0.0.1:$phoenix_grpc" --otlp-exporter-protocol grpc \
        >"$run_dir/rotel.log" 2>&1 &
    pid_of[rotel]=$!
}
ready_rotel() { wait_for rotel "${pid_of[rotel]}" 30 port_open "$rotel_http" && still_running rotel; }

launch_rotel_counting() {
    burst_grpc=$(free_port)
    burst_http=$(free_port)
    "$venv/lib/python3"*/site-packages/rotel/rotel-agent start \
        --otlp-grpc-endpoint "127.0.0.1:$burst_grpc" --otlp-http-endpoint "127.0.0.1:$burst_http" \
        --debug-log traces --debug-log-verbosity basic --exporter blackhole \
        >"$run_dir/rotel_counting.log" 2>&1 &
    pid_of[rotel_counting]=$!
}
ready_rotel_counting() {
    wait_for "rotel (counting)" "${pid_of[rotel_counting]}" 30 port_open "$burst_http" && still_running rotel_counting
}

# still_running NAME: the port that answered may be another process's, and
# a rotel that could not bind it exits at once: alive half a second later,
# it holds its ports.
still_running() {
    sleep 0.5
    if ! kill -0 "${pid_of[$1]}" 2>/dev/null; then
        say "$1 exited during startup"
        return 1
    fi
}

record_pids() {
    echo "TRACED_RECEIVER_PIDS=\"${pid_of[*]}\"" >"$envfile"
}

# bring_up NAME: waits for a launched receiver. The ports were free when
# picked, but until it binds them any other process may take one (an
# outgoing connection is given a port from the same range): a receiver
# that says so is started again on fresh ports, up to three times.
bring_up() {
    local name=$1 attempt log="$run_dir/$1.log"
    for attempt in 1 2 3; do
        if "ready_$name"; then
            return 0
        fi
        if ((attempt < 3)) && grep -qiE "address already in use|address in use|os error 98" "$log" 2>/dev/null; then
            say "$name: a port was taken before it could bind it; starting it again on fresh ports"
            kill "${pid_of[$name]}" 2>/dev/null || true
            "launch_$name"
            record_pids
            continue
        fi
        tail -n 30 "$log" >&2
        return 1
    done
}

start() {
    local envfile=$1
    install
    local run_dir
    run_dir="$(dirname "$envfile")/receivers-run"
    mkdir -p "$run_dir/tls"
    make_certificates "$run_dir/tls"
    local phoenix_port phoenix_grpc tls_port tls_grpc mtls_port mtls_grpc rotel_grpc rotel_http burst_grpc burst_http
    local -A pid_of=()
    local name
    # Phoenix starts slowly: the three start together, and the rotels when
    # the first answers (rotel forwards to it).
    for name in phoenix phoenix_tls phoenix_mtls; do
        "launch_$name"
        record_pids
    done
    for name in phoenix phoenix_tls phoenix_mtls; do
        bring_up "$name" || return 1
    done
    for name in rotel rotel_counting; do
        "launch_$name"
        record_pids
        bring_up "$name" || return 1
    done
    cat >>"$envfile" <<VARS
TRACED_PHOENIX_URL=http://127.0.0.1:$phoenix_port
TRACED_PHOENIX_GRPC=http://127.0.0.1:$phoenix_grpc
TRACED_ROTEL_HTTP=http://127.0.0.1:$rotel_http
TRACED_ROTEL_GRPC=http://127.0.0.1:$rotel_grpc
TRACED_ROTEL_LOG=$run_dir/rotel.log
TRACED_ROTEL_COUNTING_HTTP=http://127.0.0.1:$burst_http
TRACED_ROTEL_COUNTING_LOG=$run_dir/rotel_counting.log
TRACED_ROTEL_AGENT=$(echo "$venv/lib/python3"*/site-packages/rotel/rotel-agent)
TRACED_PHOENIX_TLS_URL=https://127.0.0.1:$tls_port
TRACED_PHOENIX_TLS_GRPC=https://127.0.0.1:$tls_grpc
TRACED_TLS_CA=$run_dir/tls/ca.pem
TRACED_PHOENIX_MTLS_URL=https://127.0.0.1:$mtls_port
TRACED_PHOENIX_MTLS_GRPC=https://127.0.0.1:$mtls_grpc
TRACED_TLS_CLIENT_CERT=$run_dir/tls/client.pem
TRACED_TLS_CLIENT_KEY=$run_dir/tls/client.key
TRACED_RECEIVERS_PYTHON=$venv/bin/python
TRACED_PROMETHEUS=$prometheus
VARS
    say "phoenix on 127.0.0.1:$phoenix_port (gRPC $phoenix_grpc), with TLS on $tls_port (gRPC $tls_grpc)," \
        "with mutual TLS on $mtls_port (gRPC $mtls_grpc);" \
        "rotel on 127.0.0.1:$rotel_http (gRPC $rotel_grpc), counting rotel on $burst_http"
}

stop() {
    local envfile=$1 pids=""
    [[ -f "$envfile" ]] || return 0
    pids=$(sed -n 's/^TRACED_RECEIVER_PIDS="\(.*\)"$/\1/p' "$envfile")
    for pid in $pids; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $pids; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
}

with() {
    local run_dir status=0
    run_dir=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "stop '$run_dir/env'; rm -rf '$run_dir'" EXIT
    if ! start "$run_dir/env"; then
        say "the receivers did not start"
        exit 1
    fi
    set -a
    # shellcheck disable=SC1091
    . "$run_dir/env"
    set +a
    "$@" || status=$?
    return "$status"
}

case "${1:-}" in
install) install ;;
start) start "${2:?usage: receivers.sh start ENVFILE}" ;;
stop) stop "${2:?usage: receivers.sh stop ENVFILE}" ;;
with)
    shift
    with "${@:?usage: receivers.sh with COMMAND...}"
    ;;
*)
    echo "usage: receivers.sh install | start ENVFILE | stop ENVFILE | with COMMAND..." >&2
    exit 2
    ;;
esac
