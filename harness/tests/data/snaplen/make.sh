#!/bin/sh
# How the captures in this directory were made (once; they are committed, the tests do not
# run tcpdump): python (http.client, urllib) and curl clients against the reference server
# on loopback, captured by tcpdump with the snap lengths users have (-s 96, -s 128), plus a
# copy cut in the middle of its last packet. As root, from the source tree, after a build:
#   sh harness/tests/data/snaplen/make.sh
set -eu
dir=$(dirname "$0")
port=18431
build/server/connfault-server --port $port -q &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
i=0
until curl -s -o /dev/null http://127.0.0.1:$port/; do # bounded: 50 x 0.1 s
    i=$((i + 1)); [ $i -lt 50 ] || exit 1; sleep 0.1
done

python_clients() {
    python3 -c "
import http.client, urllib.request
c = http.client.HTTPConnection('127.0.0.1', $port)
for path in ('/', '/bytes/100', '/bytes/200?from=python-http-client-keep-alive'):
    c.request('GET', path, headers={'X-Trace': 'snaplen-fixture'}); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
c.close()
r = urllib.request.urlopen('http://127.0.0.1:$port/bytes/300'); r.read()
assert r.status == 200
"
}

curl_clients() {
    curl -sf -o /dev/null -o /dev/null -H 'Accept-Language: en' \
        http://127.0.0.1:$port/ http://127.0.0.1:$port/bytes/1000
    curl -sf -o /dev/null -A 'Mozilla/5.0 (X11; Linux x86_64) connfault-fixture' \
        http://127.0.0.1:$port/bytes/50
}

capture_once() { # SNAPLEN FILE CLIENTS
    tcpdump -i lo -s "$1" -U -w "$2" "tcp port $port" 2>"$2.log" &
    td=$!
    i=0
    until grep -q 'listening on' "$2.log"; do
        i=$((i + 1)); [ $i -lt 50 ] || exit 1; sleep 0.1
    done
    sleep 0.5 # tcpdump says "listening" a moment before its filter is in place
    $3
    sleep 0.5 # the last FIN/ACKs reach tcpdump's buffer
    kill -INT $td; wait $td || true
    rm -f "$2.log"
}

capture() { # as capture_once; again (3 tries) when tcpdump saw nothing, as happens at times
    for try in 1 2 3; do
        capture_once "$@"
        [ "$(stat -c %s "$2")" -le 24 ] || return 0
    done
    exit 1
}

capture 96 "$dir/python-s96.pcap" python_clients
capture 128 "$dir/python-s128.pcap" python_clients
capture 96 "$dir/curl-s96.pcap" curl_clients
capture 128 "$dir/curl-s128.pcap" curl_clients
# the same capture, cut in the middle of a packet near its end
size=$(stat -c %s "$dir/curl-s128.pcap")
head -c $((size - 40)) "$dir/curl-s128.pcap" >"$dir/curl-s128-cut.pcap"
