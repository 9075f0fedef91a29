# fish completion for aistack-breaker
function __aistack_breaker_names
    set -l dir $AISTACK_STATE_DIR
    test -n "$dir"; or set dir (string split -m1 : -- "$STATE_DIRECTORY")[1]
    test -n "$dir"; or begin
        set -q XDG_STATE_HOME; and set dir $XDG_STATE_HOME/aistack; or set dir $HOME/.local/state/aistack
    end
    for b in $dir/breakers/*
        basename $b
    end
end

# complete run's COMMAND and its arguments, the words after "--"
function __aistack_breaker_command
    set -l toks (commandline -opc) (commandline -ct)
    set -l i (contains -i -- -- $toks)
    __fish_complete_subcommand --commandline $toks[(math $i + 1)..-1]
end

set -l subs run probe status reset trip
complete -c aistack-breaker -f
complete -c aistack-breaker -n "not __fish_seen_subcommand_from $subs" -a run -d 'run a command under the breaker'
complete -c aistack-breaker -n "not __fish_seen_subcommand_from $subs" -a probe -d 'probe a URL under the breaker'
complete -c aistack-breaker -n "not __fish_seen_subcommand_from $subs" -a status -d 'show breakers'
complete -c aistack-breaker -n "not __fish_seen_subcommand_from $subs" -a reset -d 'close a breaker'
complete -c aistack-breaker -n "not __fish_seen_subcommand_from $subs" -a trip -d 'open a breaker now'
complete -c aistack-breaker -n "not __fish_seen_subcommand_from $subs" -l version -d 'show the version'
complete -c aistack-breaker -s h -l help -d 'show help'
complete -c aistack-breaker -n "__fish_seen_subcommand_from run probe reset trip" -s v -l verbose -d 'report trials and state changes'
complete -c aistack-breaker -n "__fish_seen_subcommand_from run probe" -l failures -x -d 'consecutive failures that open it'
complete -c aistack-breaker -n "__fish_seen_subcommand_from run probe trip" -l open-for -x -d 'first open period'
complete -c aistack-breaker -n "__fish_seen_subcommand_from run probe" -l successes -x -d 'half-open successes that close it'
complete -c aistack-breaker -n "__fish_seen_subcommand_from run probe" -l half-open -x -d 'trial calls at once, across processes'
complete -c aistack-breaker -n "__fish_seen_subcommand_from run probe" -l max-open-for -x -d 'cap of the doubling open period'
complete -c aistack-breaker -n "__fish_seen_subcommand_from run probe" -l timeout -x -d 'kill the command (run) or give up (probe) after'
complete -c aistack-breaker -n "__fish_seen_subcommand_from status" -l json -d 'JSON Lines'
complete -c aistack-breaker -n "__fish_seen_subcommand_from $subs; and not contains -- -- (commandline -opc)" -a '(__aistack_breaker_names)' -d breaker
complete -c aistack-breaker -n "__fish_seen_subcommand_from run; and contains -- -- (commandline -opc)" -a '(__aistack_breaker_command)'
