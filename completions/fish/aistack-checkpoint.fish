# fish completion for aistack-checkpoint
function __aistack_checkpoint_dir
    if test -n "$AISTACK_STATE_DIR"
        echo $AISTACK_STATE_DIR
    else if test -n "$STATE_DIRECTORY"
        string split -m1 : $STATE_DIRECTORY | head -n 1
    else if test -n "$XDG_STATE_HOME"
        echo $XDG_STATE_HOME/aistack
    else
        echo $HOME/.local/state/aistack
    end
end

function __aistack_checkpoint_streams
    for s in (__aistack_checkpoint_dir)/streams/*/
        basename $s
    end
end

function __aistack_checkpoint_consumers
    for c in (__aistack_checkpoint_dir)/streams/*/consumers/*
        basename $c
    end | sort -u
end

set -l verbs read commit run seek status remove
complete -c aistack-checkpoint -f
complete -c aistack-checkpoint -n "not __fish_seen_subcommand_from $verbs" -a read -d 'print the records after the committed offset'
complete -c aistack-checkpoint -n "not __fish_seen_subcommand_from $verbs" -a commit -d 'make the pending offset the committed one'
complete -c aistack-checkpoint -n "not __fish_seen_subcommand_from $verbs" -a run -d 'feed batches to a command, commit each on exit 0'
complete -c aistack-checkpoint -n "not __fish_seen_subcommand_from $verbs" -a seek -d 'move the committed offset'
complete -c aistack-checkpoint -n "not __fish_seen_subcommand_from $verbs" -a status -d 'head, backlog and consumers'
complete -c aistack-checkpoint -n "not __fish_seen_subcommand_from $verbs" -a remove -d 'forget a consumer'
complete -c aistack-checkpoint -s h -l help -d 'show help'
complete -c aistack-checkpoint -n "not __fish_seen_subcommand_from $verbs" -l version -d 'show the version'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from read commit run seek remove" -s v -d 'report on standard error'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from read run" -s n -x -d 'records: at most (read), per batch (run)'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from read run" -s f -d 'wait for more records'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from read" -l timeout -x -d 'with -f, stop waiting after'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from read run" -l from -x -a 'start end' -d 'where a new consumer starts'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from seek" -l start -d 'the first retained offset'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from seek" -l end -d 'the head'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from seek" -l offset -x -d 'a record boundary'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from status" -l json -d 'JSON Lines, one object per stream'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from read commit run seek remove" -a '(__aistack_checkpoint_consumers)' -d consumer
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from read commit run seek remove status" -a '(__aistack_checkpoint_streams)' -d stream
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from run" -l max-batch -x -d 'double full batches up to N records'
complete -c aistack-checkpoint -n "__fish_seen_subcommand_from run" -l max-batch-bytes -x -d 'stop a growing batch at SIZE bytes'
