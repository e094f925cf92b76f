# Scenario control, guest 1 (the lower domid: it offers the control channel to everyone).
# Loads yasmin.ko, gets a control channel with guest 2, ignores a third guest's forgeries,
# survives guest 2 reloading its module and guest 2's destruction, and gives a restarted
# guest a fresh channel. PROTOCOL.md in xenstore-watch/ says what should happen.
. /yasmin/lib/case.sh
Y=/local/domain/$SELF_DOMID/data/yasmin
d2=$PEER_DOMID
mark_kernel_log
check module-loaded insmod /yasmin/yasmin.ko
check area-ready retry 30 grep -q "^domid $SELF_DOMID .* generation [1-9]" /sys/kernel/debug/yasmin/pairs
check up-published sh -c "test \"\$(yasmin-xs read $Y/up)\" = \"\$(yasmin-xs read $Y/gen)\""
check barrier-loaded barrier loaded 120

# Guest 2 (the acceptor) asks; we offer; both ends come up.
check channel-up retry 30 pair_state_is "$d2" connected
check role-offerer test "$(pair_field "$d2" role)" = offerer
gref1=$(pair_field "$d2" gref)
check offer-published sh -c "yasmin-xs read $Y/offer/$d2 | grep -q '^1 '"
check offer-readable-by-peer-only sh -c "yasmin-xs get-perms $Y/offer/$d2 | tr '\n' ' ' | grep -qx 'n$SELF_DOMID r$d2 '"
xs_signal up-guest1

# A third guest forges entries (guest3.sh); none of it may touch the pair. (Its boot alone
# took 155 s, creation to script, in the slowest hour measured, 2026-12-07 07:10; hence the long wait.)
check forgeries-done xs_wait forged-done 420
sleep 3
check forged-entries-ignored-channel-intact eval 'pair_state_is $d2 connected && [ "$(pair_field $d2 gref)" = "$gref1" ] && [ "$(pair_field $d2 ups)" = 1 ]' 
check forged-generation-logged eval 'kernel_log_since_mark | grep -q "ignored offer/request of generation"'
check malformed-request-logged eval 'kernel_log_since_mark | grep -q "ignored malformed"' 
d3=$(yasmin-xs read "$SHARED_XS/guest3-domid")
check forger-got-no-channel eval '! pair_state_is $d3 connected && [ "$(pair_field $d3 gref)" = 0 ]' 
xs_signal checked-forgeries

# Guest 2 reloads its module: the old channel goes, a new one (new grant) comes.
check peer-reloaded xs_wait reloaded-guest2 120
check channel-up-after-peer-reload retry 30 pair_state_is "$d2" connected
# A new channel, not the old one kept: the old went down first (grant references and
# ports are recycled by the kernel, so their numbers prove nothing).
check fresh-channel-after-peer-reload eval '[ "$(pair_field $d2 ups)" = 2 ] && [ "$(pair_field $d2 downs)" = 1 ]' 

# dom0.sh destroys guest 2 and times our reaction (from its own clock, in XenStore).
xs_signal ready-for-destroy
check peer-destroyed xs_wait destroyed-guest2 120
check channel-down-after-peer-death eval 'pair_state_is $d2 idle && [ "$(pair_field $d2 gref)" = 0 ] && [ "$(pair_field $d2 downs)" = 2 ]' 
check own-offer-withdrawn sh -c "! yasmin-xs read $Y/offer/$d2 2>/dev/null"
check gone-notice-consumed sh -c "! yasmin-xs read $Y/gone/$d2 2>/dev/null"

# A restarted guest 2 (new domain) gets a fresh channel.
check restarted-peer-up xs_wait up-guest2b 180
d2b=$(yasmin-xs read "$SHARED_XS/guest2b-domid")
check restarted-peer-channel-up retry 30 pair_state_is "$d2b" connected
check restarted-peer-fresh-channel eval '[ "$(pair_field $d2b ups)" = 1 ] && [ "$(pair_field $d2b role)" = offerer ]'
check dead-peer-stays-down pair_state_is "$d2" idle
xs_signal checked-restart
check restarted-peer-unloaded xs_wait unloaded-guest2b 120
check channel-down-after-peer-unload retry 10 pair_state_is "$d2b" idle

check module-unloaded rmmod yasmin
check up-removed-on-unload sh -c "! yasmin-xs read $Y/up 2>/dev/null"
check offers-cleaned-on-unload eval '[ -z "$(yasmin-xs ls $Y/offer 2>/dev/null)" ]' 
check unload-logged eval 'kernel_log_since_mark | grep -q "yasmin: unloaded"' 
kernel_log_since_mark | grep yasmin | sed 's/^/# /'
