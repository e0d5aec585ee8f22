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
