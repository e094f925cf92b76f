# Shared by both sides: the skip options and a converter from vsock_test output
# ("N - name...ok") to one case per test.
skip_opts() { grep -v '^#' skip | awk '{ printf "--skip=%s ", $1 }'; }
to_cases() { # PREFIX: reads vsock_test output, prints YASMIN-CASE lines and the raw output
    awk -v p="$1" '
        { print "# " $0 }
        match($0, /^[0-9]+ - .*\.\.\.ok$/) {
            name = $0; sub(/\.\.\.ok$/, "", name); gsub(/[^A-Za-z0-9_+()-]+/, "-", name)
            print "YASMIN-CASE ok " p "/" name
        }'
}
# Only the shutdown tests (16 SHUT_WR, 17 SHUT_RD): every other ID skipped.
only_shutdown_opts() {
    i=0
    while [ $i -le 25 ]; do
        case $i in 16|17) ;; *) printf -- '--skip=%s ' $i ;; esac
        i=$((i + 1))
    done
}
SHUTDOWN_ROUNDS=20
