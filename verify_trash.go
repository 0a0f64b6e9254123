package runnel

import (
	"fmt"
	"path/filepath"
)

// trash reports the graves in trash/ (trash.go) of topic, of every topic
// if "". One whose byte is free is left over: a grave holding a topic's
// files is reported with its size, an empty one noted. One whose byte is
// held has a delete at work in it: noted if it holds a topic's files,
// which are being removed. What runnel did not make is noted. Empty
// graves and what runnel did not make are looked at only when every
// topic is checked.
func (v *verifier) trash(topic string) error {
	graves, err := v.l.listGraves()
	if err != nil {
		return err
	}
	adminHook(hookGravesListed, "")
	for _, listed := range graves {
		held := false
		if !listed.foreign {
			if held, err = v.l.graveHeld(listed); err != nil {
				return err
			}
		}
		// Read it again once its byte was checked: a maker that let the
		// byte go since the listing is done with the grave (it moved a
		// directory in and removed it, or failed to), and what it left
		// is what counts, not what the listing saw.
		g, exists := readGrave(listed.path)
		if !exists {
			continue // its maker removed it, and let its byte go, since it was listed
		}
		if topic != "" && g.topic != topic {
			continue
		}
		rel := filepath.Join(trashDirName, filepath.Base(g.path))
		if g.foreign {
			v.note("%s: not a grave runnel made, or it holds something other than one topic directory; left alone", rel)
			continue
		}
		switch {
		case held && g.topic != "":
			v.note("%s: files of deleted topic %s, being removed", rel, g.topic)
		case held:
			// Made by a delete at work, which moves a directory in next.
		case g.err != nil:
			v.problem(Problem{Kind: ProblemLeftoverGrave, Partition: -1, Path: g.path, Pos: -1, Offset: -1,
				Detail: fmt.Sprintf("a grave that cannot be read (%v); Repair or the next Open of the log removes it once it can", g.err)})
		case g.topic == "":
			v.note("%s: an empty grave, left by a delete that died before it moved the topic's directory in; the next Open of the log removes it", rel)
		default:
			v.problem(Problem{Kind: ProblemLeftoverGrave, Topic: g.topic, Partition: -1, Path: g.path, Pos: -1, Offset: -1,
				Detail: fmt.Sprintf("%d bytes of deleted topic %s's files, left by a delete that died or failed to remove them; Repair or the next Open of the log removes them", treeSize(g.path), g.topic)})
		}
	}
	return nil
}
