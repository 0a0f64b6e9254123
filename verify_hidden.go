package runnel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// hiddenTopics reports the directories of topics/ that hold segment files
// but no topic.json that can be read: no listing shows them (Topics,
// Verify's own), no reader reads them, and a CreateTopic of the name
// refuses (clearLeftover), so their records are hidden, not lost: the
// topic.json restored brings them back. What a CreateTopic that died
// before it wrote topic.json leaves holds no segment, and is no problem.
// Only a Verify of every topic looks.
func (v *verifier) hiddenTopics() error {
	listed, _, err := v.l.topicNames()
	if err != nil {
		return err
	}
	if hook := verifyHiddenListed; hook != nil {
		hook()
	}
	topics := filepath.Join(v.l.dir, "topics")
	entries, err := os.ReadDir(topics)
	if err != nil {
		return fmt.Errorf("runnel: list topics: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || validateName("topic", name) != nil || slices.Contains(listed, name) {
			continue
		}
		dir := filepath.Join(topics, name)
		parts, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("runnel: verify %s: %w", dir, err)
		}
		if !holdsSegments(dir, parts) {
			continue
		}
		path := filepath.Join(dir, topicFileName)
		why := "no " + topicFileName
		switch _, err := os.Stat(path); {
		case err == nil:
			continue // a topic made, and written to, since the listing
		case !errors.Is(err, fs.ErrNotExist):
			why = fmt.Sprintf("a %s that cannot be read (%v)", topicFileName, err)
		}
		v.problem(Problem{Kind: ProblemCorrupt, Topic: name, Partition: -1, Path: path, Pos: -1, Offset: -1,
			Detail: fmt.Sprintf("a topic directory with segment files but %s: no reader sees its records; restore it (or remove the directory to drop them)", why)})
	}
	return nil
}

// verifyHiddenListed, if set (by a test), runs between hiddenTopics'
// listing of the topics and its look at the directories left out.
var verifyHiddenListed func()
