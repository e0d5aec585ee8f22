# An array holding the pattern, reshaped with mdadm --grow, power cut mid-way.
# Extra variables: ADD (member indices to --add first; RAID-0: --add with the grow),
# GROW (mdadm --grow args), SHRINK_TO (new raid-devices: set --array-size first), BACKUP (1: --backup-file on
# the ext4 disk $BK; auto: only when mdadm cannot move data_offset), SPEED (KiB/s), CUT (percent).
create_array
fx_write_pattern
if [ "${BACKUP:-0}" != 0 ]; then
    fx_run mkfs.ext4 -q -F $BK
    fx_run mount -t ext4 $BK /backup
fi
# RAID-0 has no spares: mdadm adds the new members in the grow itself (--grow --add),
# after its takeover to RAID-4
_grow_add=""
for k in ${ADD:-}; do
    eval "_d=\$M$k"
    if [ "$LEVEL" = 0 ]; then _grow_add="$_grow_add $_d"; else fx_run mdadm /dev/md0 --add $_d; fi
done
[ -n "$_grow_add" ] && _grow_add="--add$_grow_add"
if [ -n "${SHRINK_TO:-}" ]; then
    _cs=$(cat /sys/block/md0/md/component_size)
    _dd=$((SHRINK_TO - 1)); [ "$LEVEL" = 6 ] && _dd=$((SHRINK_TO - 2))
    fx_run mdadm --grow /dev/md0 --array-size=$((_cs * _dd))
    fx_kv shrunk_array_bytes "$(blockdev --getsize64 /dev/md0)"
fi
if [ "$LEVEL" = 0 ]; then
    # RAID-0 has no sync_speed_* of its own (until the takeover): the system-wide limits
    echo "$SPEED" > /proc/sys/dev/raid/speed_limit_max
    echo "$SPEED" > /proc/sys/dev/raid/speed_limit_min
else
    fx_slow $SPEED
fi
if [ "${BACKUP:-0}" = 1 ]; then
    fx_grow $GROW $_grow_add --backup-file=/backup/md-reshape.backup
    fx_kv used_backup_file 1
elif [ "${BACKUP:-0}" = auto ]; then
    # try moving data_offset first; mdadm asks for a backup file when there is no room
    fx_section grow-try.txt mdadm --grow /dev/md0 $GROW $_grow_add
    if [ "$_rc" -eq 0 ]; then
        fx_kv used_backup_file 0
        sleep 2
    else
        fx_section mdstat-after-try.txt cat /proc/mdstat
        fx_section examine-after-try.txt fx_examine $(fx_all_members)
        # RAID-0: mdadm may have taken the array over (and added the members) before it
        # asked for the backup file; the grow is then the rest of it
        if [ "$LEVEL" = 0 ] && ! grep -q raid0 /proc/mdstat; then _grow_add=""; fi
        fx_grow $GROW $_grow_add --backup-file=/backup/md-reshape.backup
        fx_kv used_backup_file 1
    fi
else
    fx_grow $GROW $_grow_add
    fx_kv used_backup_file 0
fi
fx_slow $SPEED
wait_cut $CUT
fx_report_cut
fx_power_cut
