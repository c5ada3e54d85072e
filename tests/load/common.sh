# Helpers shared by the load scripts (sourced, not run).

now() { date +%s.%N; }
# rate MESSAGES START END -> messages/s with one decimal
rate() { awk -v n="$1" -v s="$2" -v e="$3" 'BEGIN { d = e - s; if (d <= 0) d = 0.000001; printf "%.1f", n / d }'; }
# ratio A B -> A/B with two decimals, "n/a" when B is 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
# meets RATIO TARGET -> met / BELOW target / not measured.
meets() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "not measured"; else if (r + 0 >= t + 0) print "met"; else print "BELOW target" }'; }

# free_port: a loopback TCP port nobody listens on now.
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        local p i
        for i in $(seq 1 50); do
            p=$((20000 + RANDOM % 20000))
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
        done
        return 1
    fi
}

# wait_port PORT PID SECONDS: until 127.0.0.1:PORT accepts, while PID lives.
wait_port() {
    local port=$1 pid=$2 tries=$(($3 * 5)) i
    for ((i = 0; i < tries; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# serve_mailgate BIN DIR: starts `BIN serve --config DIR/mailgate.toml` in the
# background (log in DIR/serve.log), sets mg_pid, and waits up to 60 s for
# DIR/data/run/ports.json. Returns 1, the log on stderr, if mailgate exits first
# or never writes it.
serve_mailgate() {
    local bin=$1 dir=$2 i
    (cd "$dir" && exec "$bin" serve --config "$dir/mailgate.toml") >"$dir/serve.log" 2>&1 &
    mg_pid=$!
    for ((i = 0; i < 300; i++)); do
        [ -s "$dir/data/run/ports.json" ] && return 0
        kill -0 "$mg_pid" 2>/dev/null || break
        sleep 0.2
    done
    cat "$dir/serve.log" >&2
    return 1
}

# stop_pid PID: SIGTERM, wait up to 15 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 75; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "  (pid $pid did not stop on SIGTERM within 15 s: SIGKILL)" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# smtp_source WORK: sets source_bin and src_lib to Postfix's smtp-source (the load
# generator of the SMTP benchmarks): $SMTP_SOURCE if set, else from the postfix .deb
# cached in target/load/ (fetched once with `apt-get download`, only extracted,
# under WORK/pf, never installed).
smtp_source() {
    local deb
    source_bin=${SMTP_SOURCE:-}
    if [ -n "$source_bin" ]; then
        src_lib=$(dirname "$(dirname "$source_bin")")/lib/postfix
        return 0
    fi
    deb=$(ls "$root"/target/load/postfix_*.deb 2>/dev/null | tail -n 1 || true)
    if [ -z "$deb" ]; then
        (cd "$root/target/load" && timeout 300 apt-get -o APT::Sandbox::User=root download postfix) || return 1
        deb=$(ls "$root"/target/load/postfix_*.deb | tail -n 1)
    fi
    dpkg-deb -x "$deb" "$1/pf" || return 1
    source_bin=$1/pf/usr/sbin/smtp-source
    src_lib=$1/pf/usr/lib/postfix
}

# server_toml DIR: the [server] table of a benchmark's mailgate.toml: data in
# DIR/data, mail domain load.test.
server_toml() {
    cat <<EOF2
[server]
hostname = "localhost"
data_dir = "$1/data"
default_domain = "load.test"
shutdown_grace_secs = 5
EOF2
}

# start_work NAME: a fresh $work under target/load/ (root's cwd), with the EXIT
# trap that stops mailgate ($mg_pid) and the private Dovecot ($dc_conf, its
# master pid under $work/dovecot/run) if running, then removes $work.
start_work() {
    mkdir -p "$root/target/load"
    work=$(mktemp -d "$root/target/load/$1.XXXXXX")
    chmod 755 "$work"
    mg_pid=""
    dc_conf=""
    trap stop_work EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

stop_work() {
    local rc=$? mp
    set +e
    trap - EXIT INT TERM
    [ -n "$mg_pid" ] && stop_pid "$mg_pid"
    if [ -n "$dc_conf" ]; then
        mp=$(cat "$work/dovecot/run/master.pid" 2>/dev/null)
        timeout 30 doveadm -c "$dc_conf" stop >/dev/null 2>&1
        [ -n "$mp" ] && stop_pid "$mp"
    fi
    rm -rf "$work"
    exit "$rc"
}

# rss_mib PID: the process's resident set in MiB, one decimal.
rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# mx_listener_toml: the MX (`smtp`) listener table on 127.0.0.1, kernel-chosen port.
mx_listener_toml() {
    cat <<EOF2

[listeners.smtp]
enabled = true
address = "127.0.0.1"
port = 0
tls = "starttls"
EOF2
}

# mx_config DIR SENDER_AUTH: writes DIR/mailgate.toml for an SMTP benchmark: the
# MX (`smtp`) and `https` (admin API) listeners on 127.0.0.1, kernel-chosen ports,
# data in DIR/data, mail domain load.test, SENDER_AUTH as the [smtp.sender_auth] body.
mx_config() {
    server_toml "$1" >"$1/mailgate.toml"
    mx_listener_toml >>"$1/mailgate.toml"
    cat >>"$1/mailgate.toml" <<EOF2

[listeners.https]
enabled = true
address = "127.0.0.1"
port = 0
tls = "implicit"

[smtp.sender_auth]
$2
EOF2
}

# sink_user BIN DIR: after serve_mailgate, creates sink@load.test (the recipient
# of the SMTP benchmarks) in the first organization; sets org and user (ids).
sink_user() {
    local bin=$1 dir=$2
    adm() { timeout 60 "$bin" admin "$@" --data-dir "$dir/data"; }
    org=$(adm ListOrganizations |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["OrganizationSummaries"][0]["OrganizationId"])') || return 1
    user=$(adm CreateUser --organization-id "$org" --name sink --display-name Sink \
        --password 'Corr3ct-Horse-Battery' | python3 -c 'import json,sys; print(json.load(sys.stdin)["UserId"])') || return 1
    adm RegisterToWorkMail --organization-id "$org" --entity-id "$user" --email sink@load.test >/dev/null
}

# imaps_config DIR CERTS: writes DIR/mailgate.toml for an IMAP benchmark: the
# IMAPS and https (admin API) listeners on 127.0.0.1, kernel-chosen ports, the
# certificate CERTS/{cert,key}.pem, data in DIR/data, mail domain load.test, and
# connection limits high enough for thousands of sessions.
imaps_config() {
    server_toml "$1" >"$1/mailgate.toml"
    cat >>"$1/mailgate.toml" <<EOF2

[[tls.certificates]]
cert = "$2/cert.pem"
key = "$2/key.pem"

[limits]
max_connections = 20000
max_connections_per_ip = 20000

[listeners.imaps]
enabled = true
address = "127.0.0.1"
port = 0
tls = "implicit"

[listeners.https]
enabled = true
address = "127.0.0.1"
port = 0
tls = "implicit"
EOF2
}

# imap_user BIN DIR CA ADDRESS PASSWORD: after serve_mailgate, creates the user
# ADDRESS (local part as its name) in the first organization, through the admin API.
imap_user() {
    local bin=$1 dir=$2 ca=$3 address=$4 pass=$5 org uid
    adm() { timeout 60 "$bin" admin "$@" --data-dir "$dir/data" --ca "$ca"; }
    org=$(adm ListOrganizations |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["OrganizationSummaries"][0]["OrganizationId"])') || return 1
    uid=$(adm CreateUser --organization-id "$org" --name "${address%@*}" --display-name "${address%@*}" \
        --password "$pass" | python3 -c 'import json,sys; print(json.load(sys.stdin)["UserId"])') || return 1
    adm RegisterToWorkMail --organization-id "$org" --entity-id "$uid" --email "$address" >/dev/null
}

# dovecot_config DIR CERTS PORT ADDRESS PHC [EXTRA]: writes DIR/dovecot.conf for a
# private Dovecot on 127.0.0.1:PORT (implicit TLS, Maildir under DIR/mail, logs in
# DIR/dovecot.log, state under DIR) and DIR/passwd holding ADDRESS with the
# argon2id PHC string PHC (Dovecot's {ARGON2ID} scheme reads its parameters from
# the string). EXTRA lines go in as they are (`mail_fsync = always`).
dovecot_config() {
    local d=$1 certs=$2 port=$3 address=$4 phc=$5 extra=${6:-}
    mkdir -p "$d/run" "$d/state" "$d/mail"
    chown nobody: "$d/mail"
    echo "$address:{ARGON2ID}$phc::::::" >"$d/passwd"
    cat >"$d/dovecot.conf" <<EOF2
protocols = imap
listen = 127.0.0.1
base_dir = $d/run
state_dir = $d/state
instance_name = mailgate-$(basename "$d")
log_path = $d/dovecot.log
ssl = required
ssl_cert = <$certs/cert.pem
ssl_key = <$certs/key.pem
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
disable_plaintext_auth = yes
$extra
passdb {
  driver = passwd-file
  args = $d/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$d/mail/%n
}
mail_location = maildir:~/Maildir
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $port
    ssl = yes
  }
  process_min_avail = 2
}
service stats {
  unix_listener stats-reader {
    mode = 0600
  }
  unix_listener stats-writer {
    mode = 0600
  }
}
EOF2
}
