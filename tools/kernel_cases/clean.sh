# A clean array holding the pattern, stopped cleanly.
create_array
fx_write_pattern
fx_section examine.txt fx_examine $(members_upto $N)
fx_stop_clean
