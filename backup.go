package runnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/runnel-log/runnel/internal/flockwait"
	"golang.org/x/sys/unix"
)

// Backup makes a consistent copy of a live log directory, while producers
// and consumers in this process and others go on (Log.Backup). It reads
// the source and never writes to it, so it works on a directory it may
// only read, and takes no lock that a writer waits for.
//
// What "consistent" means, and how it is reached:
//
//  1. Plan. The groups' committed offsets are read first, then each
//     partition's partition.meta, then where its committed data ends (the
//     readers' rules: partReader.seekEnd). Every record acknowledged
//     before the backup began lies below that tail, and every commit read
//     is of records below it, since a commit is of records read and the
//     end only grows.
//  2. Copy. Sealed segments below the tail are copied whole, the tail's
//     segment up to the tail: bytes that writers never change again.
//     Retention may remove sealed segments meanwhile; the copy of the
//     partition then starts after them.
//  3. Check. The copy of each segment is walked with the verifying cursor
//     (indexSegment), which rebuilds its index files from the copied
//     frames: the indexes are caches, and these describe exactly the
//     copied bytes. A walk that does not end where the plan said (a seal
//     naming the next segment; the tail) is judged on the source by the
//     writers' rules (judgeTail): damage fails the backup; what the
//     source's next writer or recovery will cut (a dead writer's torn
//     frame, bytes after the synced checkpoint that a machine restart
//     did not let reach the disk) is left out of the copy.
//  4. Fresh state. Each partition's partition.meta in the copy holds only
//     a synced checkpoint at the copy's tail; offsets files are written
//     anew with each partition's latest commit and any pending reset;
//     topic.json, runnel.format and the Kafka server's files are copied
//     as they are.
//  5. Put in place. Every file and directory of the copy is synced, and
//     the copy, built under a temporary name, is renamed to its place.

// BackupOptions configure Log.Backup. A nil *BackupOptions means the
// defaults.
type BackupOptions struct {
	// Progress, if not nil, is called on the calling goroutine as the copy
	// advances, with the bytes of segment files copied so far and the
	// total there is to copy. Default: none.
	Progress func(done, total int64)

	// CrashImage says that the log was not shut down when its files were
	// taken: it is a file-system snapshot, a disk image, or a copy made
	// while processes ran, about to be opened in the same machine run as
	// the log it came from. Bytes written after each partition's last
	// synced checkpoint may then be missing or stale anywhere, as after a
	// power loss, but no restart tells runnel so. The copy is made as the
	// recovery after a restart would make it: cut at the first frame
	// after the checkpoint that is not whole, the rest left out (and
	// reported, see PartitionBackup.LeftOut). Without it, such a hole is
	// damage and fails the backup. It is not needed for an image opened
	// after a restart, or on another machine: the checkpoint's boot id
	// tells. Default false.
	CrashImage bool

	// Verify runs Verify over the copy before it is put in place, and
	// fails the backup if Verify finds a problem. The copy's own check
	// already reads every frame (checksum, commit byte, offsets, seals);
	// Verify reads the copy once more and also decodes every record and
	// checks the indexes and offsets files. Default false.
	Verify bool
}

// BackupReport describes a backup.
type BackupReport struct {
	Dest       string            // the copy's directory
	Topics     []string          // topics copied
	Partitions []PartitionBackup // what each partition's copy holds
	Groups     []GroupBackup     // consumer groups' offsets copied
	Bytes      int64             // bytes of segment files in the copy
	Notes      []string          // what was left out, and why
}

// PartitionBackup is what the copy of one partition holds: offsets
// StartOffset … NextOffset−1, every record that was committed when the
// backup began and that retention had not removed when it was copied,
// from the start DeleteRecords recorded (the copy records it too).
type PartitionBackup struct {
	Topic       string
	Partition   int
	StartOffset int64
	NextOffset  int64
	Segments    int
	Records     int64
	Bytes       int64
	// SegmentsRemoved counts sealed segments retention or DeleteRecords
	// removed while the backup ran, before they were copied: the copy
	// starts after them.
	SegmentsRemoved int
	// LeftOut counts offsets at the end of the data that the copy leaves
	// out because the source's next writer or its recovery will cut them
	// too: a dead writer's torn frame, or data after the last synced
	// checkpoint that a machine restart did not let reach the disk (none
	// of it acknowledged in Durable mode). A note says where and why.
	LeftOut int64
}

// GroupBackup is a consumer group's committed offsets for one topic, as
// copied.
type GroupBackup struct {
	Group, Topic string
	// Committed holds each partition's committed offset (the next to
	// read); −1 where the group has committed none.
	Committed []int64
}

// Backup copies the log, as it is when Backup is called, into dest, a
// directory that must not exist yet (its parent must) or must be empty,
// while producers and consumers in this and other processes go on. The
// copy holds, for every partition, every record committed (so every
// record acknowledged) before Backup was called, unless retention removed
// it first; each consumer group's commits made before then; every topic's
// topic.json (its config and ID) as it is on disk; runnel.format; and the
// Kafka server's state (kafka/). It is a log directory like any other:
// Open it where it is, or copy it where it is needed, and Verify finds no
// problem in it. Backup never writes to the log it copies, and needs only
// read permission on it.
//
// Everything in the copy is synced (files and directories) before Backup
// returns. Until then the copy is built in a directory beside dest named
// dest.incomplete-* (or, when dest exists and is empty, in a directory
// .incomplete-* inside it) and renamed into place at the end, so a backup
// that fails or is cancelled through ctx leaves no dest (or an empty one)
// and removes what it built; one killed leaves only that .incomplete-*
// directory, which may be removed. The one lock Backup waits for is a
// Kafka server's hold of kafka/producer-ids while it takes a block of
// ids (a moment, unless the server is stopped or hung there): it waits
// only while ctx lasts.
//
// Damage in the log fails the backup with a *CorruptError naming the file
// and byte: run Verify, and Repair (with RepairOptions.Salvage if needed),
// then back up again. Segment files are copied by copy_file_range where
// the system has it (file systems that can share extents, as XFS and
// Btrfs, may do so), else read and written.
func (l *Log) Backup(ctx context.Context, dest string, opts *BackupOptions) (BackupReport, error) {
	if err := l.checkOpen(); err != nil {
		return BackupReport{}, err
	}
	var o BackupOptions
	if opts != nil {
		o = *opts
	}
	d, err := prepareBackupDest(l.dir, dest)
	if err != nil {
		return BackupReport{}, err
	}
	b := &backup{l: l, ctx: ctx, opts: o, dest: d, rep: BackupReport{Dest: d.final}}
	if err := b.run(); err != nil {
		if aerr := d.abort(); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return b.rep, err
	}
	return b.rep, nil
}

// backupHook, if set (by a test), is called as a backup advances: at
// "topics read" once every topic's topic.json is read, at "planned" once
// every tail is read, before anything is copied, at "segment" before a
// source segment is opened (topic, partition and base say which), and at
// "server state" before the Kafka server's files are read.
var backupHook func(stage, topic string, partition int, base int64)

func callBackupHook(stage, topic string, partition int, base int64) {
	if h := backupHook; h != nil {
		h(stage, topic, partition, base)
	}
}

// backup is one Backup call's state.
type backup struct {
	l    *Log
	ctx  context.Context
	opts BackupOptions
	dest *backupDest
	rep  BackupReport

	format   []byte
	topics   []*topicPlan
	groups   []groupPlan
	done     int64 // bytes copied, for Progress
	total    int64
	lastTick time.Time
}

// topicPlan is a topic as the plan found it.
type topicPlan struct {
	t      *topic
	config []byte    // topic.json, as it is on disk
	file   topicFile // config parsed
	parts  []*partPlan
	gone   bool // deleted while the backup ran
}

// groupPlan is one offsets file's commits as the plan read them.
type groupPlan struct {
	group, topic string
	made         int // the partitions the file was made for (it may cover more: grown)
	commits      []commitState
	requests     []resetRequest
}

func (b *backup) run() error {
	if err := b.plan(); err != nil {
		return err
	}
	callBackupHook("planned", "", -1, -1)
	if b.opts.Progress != nil {
		b.opts.Progress(0, b.total)
	}
	for _, tp := range b.topics {
		if err := b.copyTopic(tp); err != nil {
			return err
		}
	}
	if err := b.writeGroups(); err != nil {
		return err
	}
	callBackupHook("server state", "", -1, -1)
	if err := b.copyServerState(); err != nil {
		return err
	}
	if err := writeNewFile(filepath.Join(b.dest.build, formatFileName), b.format); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	if err := syncTree(b.dest.build); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	if b.opts.Verify {
		if err := b.verifyCopy(); err != nil {
			return err
		}
	}
	if err := b.ctx.Err(); err != nil {
		return err
	}
	if b.opts.Progress != nil {
		b.opts.Progress(b.done, max(b.total, b.done))
	}
	return b.dest.finish()
}

// plan reads what the copy will hold: the format, the topics' configs,
// the groups' commits, then every partition's tail.
func (b *backup) plan() error {
	var err error
	if b.format, err = readSmallFile(filepath.Join(b.l.dir, formatFileName), maxFormatFileBytes); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	names, err := b.l.Topics()
	if err != nil {
		return err
	}
	for _, name := range names {
		t, err := b.l.topic(name)
		if errors.Is(err, ErrTopicNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		// Read after the handle: if the topic is deleted, or created
		// again, from here on, topicGone tells at the end of its copy.
		path := filepath.Join(b.l.topicDir(name), topicFileName)
		config, err := readSmallFile(path, maxTopicFileBytes)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
		tf, err := parseTopicFile(path, config)
		if err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
		b.topics = append(b.topics, &topicPlan{t: t, config: config, file: tf})
	}
	callBackupHook("topics read", "", -1, -1)
	// Commits before tails: a commit is of records read, so each one read
	// now is at most the end of its partition, which the tails read next
	// can only be past.
	if err := b.readGroups(); err != nil {
		return err
	}
	for _, tp := range b.topics {
		// The partitions the copied topic.json names: the handle may have
		// more (this Log grew the topic since) or fewer (another process
		// did, and this Log has not looked since).
		for id := range tp.file.Partitions {
			p, err := b.l.partitionOf(tp.t, id)
			var pp *partPlan
			if err == nil {
				pp, err = planPartition(p)
			}
			if err != nil && b.topicGone(tp) {
				tp.gone = true
				break
			}
			if err != nil {
				return err
			}
			if pp.meta != nil && pp.meta.deleted() {
				stray := b.l.strayMark(tp.t, p.id)
				var ce *CorruptError
				if stray != nil && !errors.As(stray, &ce) {
					return stray
				}
				if stray == nil {
					// DeleteTopic flagged it, and removes it next (or
					// died first, and the next to meet the flag
					// finishes the delete: settleDeleteLocked).
					tp.gone = true
					break
				}
				// Flagged by damage: the records are all there, and the
				// copy gets a partition.meta of its own, without it.
				b.note("partition %s: %v; copied, without the mark", p.dir, stray)
			}
			tp.parts = append(tp.parts, pp)
			b.total += pp.bytes
		}
	}
	return b.ctx.Err()
}

// topicGone reports whether tp's topic was deleted (or deleted and
// created again) since the plan found it.
func (b *backup) topicGone(tp *topicPlan) bool { return !b.l.topicCurrent(tp.t) }

// copyTopic copies a topic's partitions, then its topic.json, as
// CreateTopic writes them: a topic exists when its config file does.
func (b *backup) copyTopic(tp *topicPlan) error {
	name := tp.t.name
	dir := filepath.Join(b.dest.build, "topics", name)
	notes := len(b.rep.Notes)
	if !tp.gone {
		var parts []PartitionBackup
		for _, pp := range tp.parts {
			pb, err := b.copyPartition(pp, partitionDir(dir, pp.p.id))
			if err != nil && b.topicGone(tp) {
				tp.gone = true
				break
			}
			if err != nil {
				return err
			}
			parts = append(parts, pb)
		}
		// Deleted meanwhile, its segments would have looked removed by
		// retention: checked once all are copied (a topic deleted does not
		// come back; one created again under its name is another).
		if !tp.gone && b.topicGone(tp) {
			tp.gone = true
		}
		if !tp.gone {
			b.rep.Partitions = append(b.rep.Partitions, parts...)
			for _, pb := range parts {
				b.rep.Bytes += pb.Bytes
			}
		}
	}
	if tp.gone {
		b.rep.Notes = b.rep.Notes[:notes] // of partitions not copied
		b.note("topic %s: deleted, or being deleted, while the backup ran; not copied", name)
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
		return nil
	}
	if err := writeNewFile(filepath.Join(dir, topicFileName), tp.config); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	b.rep.Topics = append(b.rep.Topics, name)
	return nil
}

// readGroups reads the latest commit and reset request of every partition
// of every group's offsets file.
func (b *backup) readGroups() error {
	groups, err := readGroupDirs(b.l.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	for _, group := range groups {
		topics, err := b.l.groupTopics(group)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
		for _, topic := range topics {
			gp, err := readGroupPlan(b.l.dir, group, topic)
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("runnel: backup: group %s, topic %s: %w", group, topic, err)
			}
			b.groups = append(b.groups, gp)
		}
	}
	return nil
}

// readGroupPlan reads one offsets file's commits and reset requests.
func readGroupPlan(dir, group, topic string) (groupPlan, error) {
	gp := groupPlan{group: group, topic: topic}
	o, err := openOffsets(dir, group, topic, -1, "", false)
	if err != nil {
		return gp, err
	}
	defer o.close()
	gp.made = o.made
	if o.deleted() {
		// A DeleteGroup flagged it, and removes it next unless it died
		// first: then the file stays, commits and all.
		gone, err := o.goneToReader()
		if err != nil {
			return gp, err
		}
		if gone {
			return gp, fs.ErrNotExist
		}
	}
	for p := range o.nparts {
		st, err := readCommitSettled(o, p)
		if err != nil {
			return gp, err
		}
		req, err := o.readRequest(p)
		if err != nil {
			return gp, err
		}
		gp.commits = append(gp.commits, st)
		gp.requests = append(gp.requests, req)
	}
	return gp, nil
}

// readCommitSettled reads partition p's latest commit. Two commits in a
// row, each torn by the read that overlapped it, could make both slots
// look invalid to one read; damage stays invalid when read again.
func readCommitSettled(o *offsetsFile, p int) (commitState, error) {
	for try := 0; ; try++ {
		st, err := o.readCommit(p)
		if err == nil || try == 2 || !errors.As(err, new(*CorruptError)) {
			return st, err
		}
		time.Sleep(time.Millisecond)
	}
}

// writeGroups writes, for each offsets file read, a new one in the copy
// holding each partition's latest commit (its offset, time and the reset
// requests it applied) and any reset request: no member is alive in the
// copy, so member and owner records are left out.
func (b *backup) writeGroups() error {
	plans := map[string]*topicPlan{}
	for _, tp := range b.topics {
		plans[tp.t.name] = tp
	}
	for _, gp := range b.groups {
		tp := plans[gp.topic]
		if tp == nil || tp.gone {
			b.note("group %s: its offsets for topic %s are not copied: the topic is not in the copy", gp.group, gp.topic)
			continue
		}
		// As many partitions as the file says: one that disagrees with
		// its topic is Verify's to report, in the copy as in the log. A
		// file grown past its topic (an AlterTopic died before it wrote
		// topic.json), or made for a growth after the copied topic.json
		// was read, fits it: the copy, made anew, covers the topic's.
		if n := len(tp.parts); n < len(gp.commits) && (gp.made <= n || b.grownSince(tp, gp)) {
			gp.commits, gp.requests = gp.commits[:n], gp.requests[:n]
		}
		if err := writeGroupCopy(b.dest.build, gp, len(gp.commits)); err != nil {
			return fmt.Errorf("runnel: backup: group %s, topic %s: %w", gp.group, gp.topic, err)
		}
		gb := GroupBackup{Group: gp.group, Topic: gp.topic}
		for _, c := range gp.commits {
			gb.Committed = append(gb.Committed, c.offset)
		}
		b.rep.Groups = append(b.rep.Groups, gb)
	}
	return nil
}

// grownSince reports whether gp's file, made for more partitions than
// tp's copied topic.json names, was made for a growth of the topic after
// that topic.json was read: the topic, the same one (its ID), has as many
// now. A file made for more partitions than its topic ever had is
// damage, copied as it is.
func (b *backup) grownSince(tp *topicPlan, gp groupPlan) bool {
	tf, err := b.l.readTopicFile(tp.t.name)
	return err == nil && tf.ID == tp.file.ID && tf.Partitions >= gp.made
}

// writeGroupCopy creates gp's offsets file under dir and writes its
// commits and requests into it, synced.
func writeGroupCopy(dir string, gp groupPlan, nparts int) error {
	if err := createOffsetsFile(offsetsPath(dir, gp.group, gp.topic), nparts); err != nil {
		return err
	}
	o, err := openOffsets(dir, gp.group, gp.topic, nparts, "", false)
	if err != nil {
		return err
	}
	defer o.close()
	for p, c := range gp.commits {
		if req := gp.requests[p]; req.seq > 0 {
			if err := o.writeRequest(p, req); err != nil {
				return err
			}
		}
		if c.offset == noCommit && c.applied == 0 {
			continue // as created
		}
		// A new file's latest commit is its slot A with seq 0.
		st := commitState{applied: c.applied}
		if err := o.writeCommit(p, &st, c.offset, c.time); err != nil {
			return err
		}
	}
	return o.sync()
}

// serverStateDir is the Kafka server's directory in a log (package kafka
// keeps its cluster id and producer-id counter there, and its producer
// journals in kafka/producers/, which describe the live log's tail and
// are not copied).
const serverStateDir = "kafka"

// serverStateSubdirs are the names of package kafka's directories in
// serverStateDir (its groups' state, its producer journals), which a
// backup passes over whatever is at them: a symbolic link to a directory
// elsewhere is one of them too.
var serverStateSubdirs = map[string]bool{"groups": true, "producers": true}

// copyServerState copies the Kafka server's files, each read under a
// shared flock: the server moves its producer-id counter on under an
// exclusive one, so the copy never holds a torn counter. The lock is
// waited for only while the backup's context lasts: a server stopped
// (SIGSTOP) or hung inside its reservation holds it for as long.
func (b *backup) copyServerState() error {
	src := filepath.Join(b.l.dir, serverStateDir)
	entries, err := os.ReadDir(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	dst := filepath.Join(b.dest.build, serverStateDir)
	for _, e := range entries {
		// Its directories (groups/, producers/) are not copied, whether
		// directories or symbolic links to ones. Anything else is one of
		// its files: a regular file, or a symbolic link to one, copied as
		// the file it leads to, as a linked segment is; a link that
		// leads nowhere and anything else (a FIFO) is damage, found
		// without waiting (docs/FORMAT.md, Regular files only).
		if e.IsDir() || serverStateSubdirs[e.Name()] || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(src, e.Name())
		data, err := readFlocked(b.ctx, path)
		if errors.Is(err, fs.ErrNotExist) {
			if ce := leadsNowhere(path, err); ce != nil {
				return fmt.Errorf("runnel: backup: %w", ce)
			}
			continue // the server replaced it since the listing
		}
		if err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
		if err := writeNewFile(filepath.Join(dst, e.Name()), data); err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
	}
	return nil
}

// maxServerStateFile bounds what is read of a file in kafka/: they hold a
// line each.
const maxServerStateFile = 1 << 20

// readFlocked reads the file at path under a shared flock, waiting for
// it only until ctx ends.
func readFlocked(ctx context.Context, path string) ([]byte, error) {
	f, err := openRegularRead(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := flockwait.Lock(ctx, int(f.Fd()), unix.LOCK_SH); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxServerStateFile+1))
	if err == nil && len(data) > maxServerStateFile {
		err = fmt.Errorf("%s: more than %d bytes", path, maxServerStateFile)
	}
	return data, err
}

// verifyCopy runs Verify over the copy, as a Log of its own that keeps
// still: no retention, nothing logged.
func (b *backup) verifyCopy() error {
	vl, err := Open(b.dest.build, &Options{RetentionInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("runnel: backup: verify the copy: %w", err)
	}
	rep, err := vl.Verify(b.ctx, "", nil)
	err = errors.Join(err, vl.Close())
	if err != nil {
		return fmt.Errorf("runnel: backup: verify the copy: %w", err)
	}
	if !rep.OK() {
		p := rep.Problems[0]
		if rel, err := filepath.Rel(b.dest.build, p.Path); err == nil {
			p.Path = rel
		}
		return fmt.Errorf("%w: backup: Verify found %d problem(s) in the copy, first: %s", ErrCorrupt, len(rep.Problems), p)
	}
	return nil
}

func (b *backup) note(format string, args ...any) {
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf(format, args...))
}

// advance counts n more bytes copied, and reports progress at most every
// 50ms.
func (b *backup) advance(n int64) {
	b.done += n
	if b.opts.Progress == nil {
		return
	}
	if now := time.Now(); now.Sub(b.lastTick) >= 50*time.Millisecond {
		b.lastTick = now
		b.opts.Progress(b.done, max(b.total, b.done))
	}
}

// writeNewFile creates path (it must not exist) holding data, synced.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = fdatasync(int(f.Fd()))
	}
	return errors.Join(err, f.Close())
}

// syncTree syncs every directory under root, root included, deepest
// first: the entries of each are durable, files and directories alike.
func syncTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, dir := range slices.Backward(dirs) {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}
