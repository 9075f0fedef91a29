# fish completion for aistack-rotate
function __aistack_rotate_streams
    set -l dir $AISTACK_STATE_DIR
    test -n "$dir"; or set dir (string split -m1 : -- "$STATE_DIRECTORY")[1]
    test -n "$dir"; or begin
        set -q XDG_STATE_HOME; and set dir $XDG_STATE_HOME/aistack; or set dir $HOME/.local/state/aistack
    end
    for s in $dir/streams/*
        basename $s
    end
end

complete -c aistack-rotate -s n -l dry-run -d 'print the plan and change nothing'
complete -c aistack-rotate -s v -l verbose -d 'report every action on standard error'
complete -c aistack-rotate -l json -d 'print the actions as JSON lines'
complete -c aistack-rotate -l seal-size -x -d 'seal an active segment larger than SIZE'
complete -c aistack-rotate -l seal-age -x -a '1h 1d 7d never' -d 'seal an active segment older than DUR'
complete -c aistack-rotate -l compress-after -x -a '1d 7d 30d never' -d 'compress what is older than DUR'
complete -c aistack-rotate -l delete-after -x -a '7d 30d 90d never' -d 'delete what is older than DUR'
complete -c aistack-rotate -l max-total -x -d 'delete the oldest while the total exceeds SIZE'
complete -c aistack-rotate -l force -d 'delete even what a consumer or follower has not read'
complete -c aistack-rotate -l lock -x -a 'flock fcntl' -d 'the lock of the writers of plain files'
complete -c aistack-rotate -l lock-timeout -x -d 'how long to wait for the lock of a plain file'
complete -c aistack-rotate -l method -x -a 'copytruncate rename' -d 'how plain files are rotated'
complete -c aistack-rotate -l signal -x -a 'HUP USR1 USR2 TERM INT QUIT ALRM CONT WINCH' -d 'with rename: the signal sent to the writer'
complete -c aistack-rotate -l pidfile -r -F -d "the writer's process id file, for --signal"
complete -c aistack-rotate -s h -l help -d 'show help'
complete -c aistack-rotate -l version -d 'show the version'
complete -c aistack-rotate -a '(__aistack_rotate_streams)' -d stream
