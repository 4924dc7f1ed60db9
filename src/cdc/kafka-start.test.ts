import { describe, expect, it } from 'vitest';
import { kafkaStartOffsets, type RecordedStart } from './kafka-start.js';

const member = 'legacy.MemberDB.dbo.Member';
const address = 'legacy.MemberDB.dbo.Address';

/** Rows as full records them (src/copy/job.ts, src/copy/kafka.ts): the source position, then the topics' end offsets. */
function job(jobId: number, topics: Record<string, Record<string, string>> | null): RecordedStart[] {
  const rows: RecordedStart[] = [{ jobId, kind: 'mssql', position: { lsn: '0000002b00000d200005' } }];
  if (topics === null) return rows;
  const list = Object.entries(topics).map(([topic, offsets]) => ({ topic, offsets }));
  rows.push({ jobId, kind: 'kafka', position: list.length === 1 ? list[0] : { topics: list } });
  return rows;
}

describe('the Kafka start position of a fresh consumer group', () => {
  it('takes, per partition, the lowest offset any job recorded, not the newest job', () => {
    // Job 1 copied member at O1, job 2 (address) later at O2 > O1: member changes between O1 and O2 must be replayed.
    const rows = [...job(1, { [member]: { '0': '100', '1': '250' }, [address]: { '0': '40' } }), ...job(2, { [member]: { '0': '900', '1': '200' }, [address]: { '0': '75' } })];
    expect(kafkaStartOffsets(rows, member)).toEqual([
      { partition: 0, offset: '100' },
      { partition: 1, offset: '200' },
    ]);
    expect(kafkaStartOffsets(rows, address)).toEqual([{ partition: 0, offset: '40' }]);
  });

  it('reads both recorded forms (one topic, several topics), JSON text or parsed, and compares offsets as integers', () => {
    const rows: RecordedStart[] = [
      { jobId: 1, kind: 'kafka', position: JSON.stringify({ topic: member, offsets: { '0': '9007199254740993' } }) },
      { jobId: 2, kind: 'kafka', position: { topics: [{ topic: member, offsets: { '0': 10 } }] } },
      { jobId: 3, kind: 'kafka', position: { topic: member, offsets: { '0': '9' } } },
    ];
    expect(kafkaStartOffsets(rows, member)).toEqual([{ partition: 0, offset: '9' }]);
  });

  it('starts a partition that some job did not record at its beginning (left out)', () => {
    // Partition 2 was added after job 1 began: all of it is newer than job 1's copy.
    const added = [...job(1, { [member]: { '0': '100', '1': '100' } }), ...job(2, { [member]: { '0': '500', '1': '500', '2': '30' } })];
    expect(kafkaStartOffsets(added, member)).toEqual([
      { partition: 0, offset: '100' },
      { partition: 1, offset: '100' },
    ]);
    // Job 1 could not reach Kafka (only its source position is recorded): where its copy stands in the topic is unknown.
    expect(kafkaStartOffsets([...job(1, null), ...job(2, { [member]: { '0': '500' } })], member)).toEqual([]);
    // A topic no job recorded.
    expect(kafkaStartOffsets(job(1, { [member]: { '0': '5' } }), address)).toEqual([]);
    expect(kafkaStartOffsets([], member)).toEqual([]);
  });

  it('refuses an offset that is not one, naming the job, topic and partition', () => {
    expect(() => kafkaStartOffsets([{ jobId: 7, kind: 'kafka', position: { topic: member, offsets: { '3': 'x' } } }], member)).toThrow(/job 7: offset "x" of legacy.MemberDB.dbo.Member partition 3/);
  });
});
