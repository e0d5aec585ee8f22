# Shared part of the kernel_cases guest scripts (prepended by make.py after the
# case's variables).  Variables: LEVEL N CHUNK META LAYOUT SIZE_KIB (optional).

members_upto() {  # members_upto K -> $M0 .. $M(K-1)
    _l=""; _k=0
    while [ $_k -lt "$1" ]; do eval "_l=\"\$_l \$M$_k\""; _k=$((_k + 1)); done
    echo $_l
}

create_array() {
    _opts="--level=$LEVEL --raid-devices=$N --metadata=$META"
    [ -n "${CHUNK:-}" ] && _opts="$_opts --chunk=$CHUNK"
    [ -n "${LAYOUT:-}" ] && _opts="$_opts --layout=$LAYOUT"
    [ -n "${SIZE_KIB:-}" ] && _opts="$_opts --size=$SIZE_KIB"
    fx_run mdadm --create /dev/md0 --run $_opts $(members_upto $N)
    fx_wait_sync
    fx_section md-sysfs-initial.txt fx_md_sysfs
    fx_section detail-initial.txt mdadm --detail /dev/md0
}

# wait_cut PCT: wait until the reshape shows PCT percent; fail (with mdstat and md's
# sysfs) when no reshape has been running for 10 s or after 600 s
wait_cut() {
    _t=0; _idle=0
    while :; do
        _p=$(fx_progress)
        [ -n "$_p" ] && [ "$_p" -ge "$1" ] && break
        if grep -q reshape /proc/mdstat; then _idle=0; else _idle=$((_idle + 1)); fi
        _t=$((_t + 1))
        if [ $((_t % 10)) -eq 0 ] || [ $_idle -ge 10 ] || [ $_t -ge 600 ]; then
            echo "t=${_t}s progress=${_p:-none}% pos=$(cat /sys/block/md0/md/reshape_position) sync_max=$(cat /sys/block/md0/md/sync_max) suspend=$(cat /sys/block/md0/md/suspend_lo)-$(cat /sys/block/md0/md/suspend_hi)"
            cat /proc/mdstat
        fi
        if [ $_idle -ge 10 ] || [ $_t -ge 600 ]; then
            fx_section md-sysfs-fail.txt fx_md_sysfs
            echo "@@FX-FAIL reshape did not reach $1%@@"
            exit 1
        fi
        sleep 1
    done
    echo "reached ${_p}% pos=$(cat /sys/block/md0/md/reshape_position)"
}
