# A RAID array with an ext4 file system holding files of known content (slices of
# the pattern payload, a text file), unmounted cleanly; then either stopped cleanly
# or (GROW set) reshaped and power cut at CUT percent.
create_array
fx_run mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 /dev/md0
fx_run mount -t ext4 /dev/md0 /mnt
mkdir -p /mnt/dir/sub
head -c 5000000 $PAYLOAD > /mnt/big.bin
dd if=$PAYLOAD bs=4096 skip=1000 count=333 2>/dev/null > /mnt/dir/mid.bin
yes 'fastraid ext4 text line' | head -c 200000 > /mnt/dir/sub/text.txt
echo 'hello from the kernel-md guest' > /mnt/small.txt
sync
for f in big.bin dir/mid.bin dir/sub/text.txt small.txt; do
    fx_kv "file.$f" "$(sha256sum /mnt/$f | cut -d' ' -f1) $(wc -c < /mnt/$f)"
done
fx_run umount /mnt
fx_drop
fx_kv md0_bytes "$(blockdev --getsize64 /dev/md0)"
fx_kv md0_sha256 "$(fx_sha256 /dev/md0)"
if [ -z "${GROW:-}" ]; then
    fx_section examine.txt fx_examine $(members_upto $N)
    fx_stop_clean
    exit 0
fi
for k in ${ADD:-}; do eval "_d=\$M$k"; fx_run mdadm /dev/md0 --add $_d; done
fx_slow $SPEED
fx_grow $GROW
fx_slow $SPEED
wait_cut $CUT
fx_report_cut
fx_power_cut
